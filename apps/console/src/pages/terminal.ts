import { html, nothing } from 'lit';

import { api, type Operation, type RelaySession, type Terminal } from '../api';
import { ConsoleElement } from '../base';
import { FreshReads } from '../fresh-reads';
import { ago, may, money, reportError, shell } from '../state';

/** One terminal: presence, configuration, recent operations and relay sessions. */
export class TerminalPage extends ConsoleElement {
  terminalId = '';
  terminal: Terminal | null = null;
  operations: Operation[] = [];
  relays: RelaySession[] = [];
  private unsubscribe?: () => void;
  private readonly reads = new FreshReads();

  override connectedCallback(): void {
    super.connectedCallback();
    this.unsubscribe = shell.stream.onEvent((e) => {
      if (e.subjectId === this.terminalId || e.data.terminalId === this.terminalId) void this.load();
    });
    void this.load();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
  }

  private async load(): Promise<void> {
    try {
      // Each event starts a read: only the latest started is applied (answers may come back out of order).
      await this.reads.load(
        () => Promise.all([api.terminal(this.terminalId), api.operations({ terminalId: this.terminalId, limit: 20 }), api.relaySessions(this.terminalId)]),
        ([terminal, ops, relays]) => this.set({ terminal, operations: ops.data, relays: relays.data }),
      );
    } catch (err) {
      reportError(err);
    }
  }

  override render() {
    const t = this.terminal;
    if (!t)
      return html`<h1 tabindex="-1">Terminal</h1>
        <p aria-live="polite">Loading…</p>`;
    return html`
      <h1 tabindex="-1">${t.name} <span class="badge ${t.status}" data-testid="presence">${t.status}</span></h1>
      <p>
        <a href="#/fleet">← Fleet</a>
        ${may('operations:write') ? html` · <a href="#/pay?terminal=${t.id}">Take a payment</a>` : nothing}
      </p>
      <section aria-labelledby="cfg">
        <h2 id="cfg">Configuration</h2>
        <dl class="kv">
          <dt>Protocol</dt>
          <dd>${t.protocol}${t.dialect ? ` (${t.dialect})` : ''}</dd>
          <dt>Connection</dt>
          <dd><code>${JSON.stringify(t.connection)}</code></dd>
          <dt>TID / MID / department</dt>
          <dd>${t.terminalId ?? '—'} / ${t.merchantId ?? '—'} / ${t.department ?? '—'}</dd>
          <dt>Agent</dt>
          <dd>${t.agentId ?? '—'}</dd>
          <dt>Last heartbeat</dt>
          <dd>${ago(t.lastSeenAt)}</dd>
          <dt>Labels</dt>
          <dd>
            ${
              Object.entries(t.labels)
                .map(([k, v]) => `${k}:${v}`)
                .join(', ') || '—'
            }
          </dd>
          <dt>Terminal info</dt>
          <dd><code>${t.info ? JSON.stringify(t.info) : '—'}</code></dd>
        </dl>
      </section>
      <section aria-labelledby="ops">
        <h2 id="ops">Recent operations</h2>
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Type</th>
              <th scope="col">Amount</th>
              <th scope="col">State</th>
              <th scope="col">Card / RRN</th>
            </tr>
          </thead>
          <tbody>
            ${this.operations.map(
              (o) =>
                html`<tr>
                  <td>${new Date(o.createdAt).toLocaleString()}</td>
                  <td>${o.type}</td>
                  <td>${money(o.amount, o.currency)}</td>
                  <td><span class="badge ${o.state}">${o.state}</span></td>
                  <td>${o.maskedPan ?? '—'} ${o.rrn ?? ''}</td>
                </tr>`,
            )}
          </tbody>
        </table>
        ${this.operations.length === 0 ? html`<p>No operation.</p>` : nothing}
      </section>
      <section aria-labelledby="relays">
        <h2 id="relays">Relay sessions</h2>
        <table class="grid">
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col">Host</th>
              <th scope="col">State</th>
              <th scope="col">Outcome</th>
              <th scope="col">Bytes ↑/↓</th>
              <th scope="col">Duration</th>
            </tr>
          </thead>
          <tbody>
            ${this.relays.map(
              (r) =>
                html`<tr>
                  <td>${new Date(r.startedAt).toLocaleString()}</td>
                  <td>${r.host}:${r.port}</td>
                  <td>${r.state}</td>
                  <td>${r.outcome}${r.reason ? ` (${r.reason})` : ''}</td>
                  <td>${r.bytesToHost}/${r.bytesFromHost}</td>
                  <td>${r.durationMs ?? '—'} ms</td>
                </tr>`,
            )}
          </tbody>
        </table>
        ${this.relays.length === 0 ? html`<p>No relay session.</p>` : nothing}
      </section>
    `;
  }
}
