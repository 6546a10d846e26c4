-- The tunnel session whose presence writes stand. A connector's set-up sets it (setUpSessions), the close of that
-- tunnel clears it (TerminalPresence.agentOffline), and terminal status writes apply only while it names their
-- session. Before, a late ONLINE batch of a tunnel that had closed meanwhile, or another instance's late offline
-- after the agent had reconnected elsewhere, overwrote the newer state: PostgreSQL said ONLINE for a terminal with no
-- tunnel, or OFFLINE for one that was up.
ALTER TABLE "Agent" ADD COLUMN "presenceSession" UUID;
