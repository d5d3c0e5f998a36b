-- Display names (issue 12): a free-form, unique name beside the model id, as MLflow clients
-- name models ("Fraud Detector"). A model without one shows its id; the id never changes.
ALTER TABLE models ADD COLUMN display_name text;
UPDATE models SET display_name = name;
ALTER TABLE models ALTER COLUMN display_name SET NOT NULL;
ALTER TABLE models ADD CONSTRAINT models_display_name_key UNIQUE (display_name);
