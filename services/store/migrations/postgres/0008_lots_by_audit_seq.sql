-- The newest lot's audit sequence number marks the genealogy's state: lots
-- are only ever added, each with the edges into it, so the mark moves
-- exactly when the genealogy changes (traces cache the graph by it).
CREATE INDEX lots_by_audit_seq ON lots (audit_seq);
