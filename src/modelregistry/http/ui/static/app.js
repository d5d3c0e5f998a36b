// The UI's only script: a copy button and the live activity feed. No inline script anywhere
// (the CSP allows 'self' only), and user text is always set with textContent, never as HTML.
"use strict";

function setUpCopyButtons() {
  for (const button of document.querySelectorAll("button[data-copy-target]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copyTarget);
      const status = button.parentElement.querySelector(".copied");
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        if (status) status.textContent = "Copied";
      } catch (error) {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        if (status) status.textContent = "Selected: press Ctrl+C to copy";
      }
    });
  }
}

function resourceLink(resource) {
  const parts = resource.split("/");
  const isModel = parts.length === 2 && parts[0] === "models" && parts[1];
  const isVersion = parts.length === 4 && parts[0] === "models" && parts[2] === "versions" && parts[1] && parts[3];
  return isModel || isVersion ? "/" + resource : null;
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function setUpActivityFeed() {
  const table = document.getElementById("activity");
  const status = document.getElementById("live-status");
  if (!table || !status) return;
  if (table.dataset.live !== "yes") {
    status.textContent = "Live updates appear on the first (newest) page.";
    return;
  }
  const url = new URL(table.dataset.stream, window.location.href);
  url.searchParams.set("after", table.dataset.after);
  // EventSource sends Last-Event-ID itself when it reconnects, so the feed resumes after the
  // last event shown, without gaps or repeats.
  const source = new EventSource(url.toString());
  const body = table.querySelector("tbody");
  source.addEventListener("open", () => { status.textContent = "Live updates: on"; });
  source.addEventListener("error", () => { status.textContent = "Live updates: reconnecting…"; });
  source.addEventListener("audit", (message) => {
    const event = JSON.parse(message.data);
    const row = document.createElement("tr");
    row.className = "fresh";
    row.dataset.sequence = String(event.sequence);
    row.append(cell(String(event.sequence)), cell(event.time), cell(event.principal), cell(event.action));
    const target = resourceLink(event.resource);
    const resourceCell = document.createElement("td");
    if (target) {
      const link = document.createElement("a");
      link.href = target;
      link.textContent = event.resource;
      resourceCell.append(link);
    } else {
      resourceCell.textContent = event.resource;
    }
    row.append(resourceCell);
    body.prepend(row);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpCopyButtons();
  setUpActivityFeed();
});
