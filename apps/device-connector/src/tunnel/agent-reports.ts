import { performance } from 'node:perf_hooks';

import type { ControlMessage, LinkStatus } from '@payorch/tunnel';

/** Terminals whose latest report may wait at once: a terminal list holds at most 1024 (libs/tunnel control.ts). */
export const MAX_PENDING_REPORTS = 1024;

/**
 * One tunnel's link reports (`link-status`, and the links of `agent-status`) on their way to the TerminalHub, passed on
 * at most once per `intervalMs` (TUNNEL_AGENT_REPORT_INTERVAL_MS): the first at once, the ones that arrive within the
 * interval after it held until it ends, the latest per terminal only. Each report the hub takes may be a presence write
 * (Terminal.status, a `terminal.online` / `terminal.offline` event): an agent flapping a terminal's state thousands of
 * times a second made one transaction and one event after the other for as long as it liked. Now a terminal changes at
 * most once per interval per tunnel, and its last reported state is the one written. Other control messages pass at
 * once. Reports of more than MAX_PENDING_REPORTS terminals in one interval are dropped (and counted by the caller).
 */
export class AgentReports {
  private readonly pending = new Map<string, LinkStatus>();
  private timer: NodeJS.Timeout | undefined;
  private lastAt = Number.NEGATIVE_INFINITY;
  private closed = false;

  constructor(
    private readonly intervalMs: number,
    private readonly deliver: (message: ControlMessage) => void,
    private readonly onDropped: (terminalId: string) => void = () => undefined,
    private readonly now: () => number = () => performance.now(),
  ) {}

  push(message: ControlMessage): void {
    if (this.closed) return;
    if (message.type === 'link-status')
      this.hold({ terminalId: message.terminalId, state: message.state, ...(message.detail !== undefined && { detail: message.detail }) });
    else if (message.type === 'agent-status') for (const link of message.links) this.hold(link);
    else return this.deliver(message);
    this.schedule();
  }

  /** The tunnel closed: nothing held is passed on (its close writes the agent's presence). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
  }

  private hold(link: LinkStatus): void {
    if (!this.pending.has(link.terminalId) && this.pending.size >= MAX_PENDING_REPORTS) return this.onDropped(link.terminalId);
    this.pending.set(link.terminalId, link);
  }

  private schedule(): void {
    if (this.timer !== undefined || this.pending.size === 0) return;
    const wait = this.lastAt + this.intervalMs - this.now();
    if (wait <= 0) return this.flush();
    this.timer = setTimeout(() => this.flush(), wait);
    this.timer.unref();
  }

  private flush(): void {
    this.timer = undefined;
    this.lastAt = this.now();
    const links = [...this.pending.values()];
    this.pending.clear();
    // One tick: the hub's presence marks of these reports join one batch of the tenant (TerminalPresence).
    for (const link of links) this.deliver({ type: 'link-status', ...link });
  }
}
