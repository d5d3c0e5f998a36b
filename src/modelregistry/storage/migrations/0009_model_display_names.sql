-- Display names (issue 12): a free-form, unique name beside the model id, as MLflow clients
-- name models ("Fraud Detector"). A model without one shows its id; the id never changes.
ALTER TABLE models ADD COLUMN display_name text;
UPDATE models SET display_name = name;
ALTER TABLE models ALTER COLUMN display_name SET NOT NULL;
ALTER TABLE models ADD CONSTRAINT models_display_name_key UNIQUE (display_name);

-- An insert that names no display name (every writer before this migration) gets the id.
CREATE FUNCTION models_default_display_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.display_name := COALESCE(NULLIF(NEW.display_name, ''), NEW.name);
    RETURN NEW;
END
$$;
CREATE TRIGGER models_default_display_name BEFORE INSERT ON models
    FOR EACH ROW EXECUTE FUNCTION models_default_display_name();
