-- Comments can be edited by their author (or an admin); the edit time is kept.

ALTER TABLE comments ADD COLUMN update_time timestamptz;
