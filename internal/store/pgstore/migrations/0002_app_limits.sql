-- Each app's limits (a JSON object of chat.Limits; zero fields mean the
-- server's defaults) and whether the operators froze it.
ALTER TABLE apps ADD COLUMN IF NOT EXISTS limits TEXT NOT NULL DEFAULT '{}';
ALTER TABLE apps ADD COLUMN IF NOT EXISTS frozen BOOLEAN NOT NULL DEFAULT false;
