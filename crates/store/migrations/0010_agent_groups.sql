-- Agents' group membership (AgentCreated.group_ids, AgentUpdated.groups): the groups whose
-- cases the agent takes in round-robin. Empty = every group, which is what every agent
-- created before this migration is (their events carry no groups).
ALTER TABLE agents ADD COLUMN group_ids uuid[] NOT NULL DEFAULT '{}';
