import { html, nothing } from 'lit';

import { type Agent, api, type PresenceStatus, type Store, type Terminal } from '../api';
import { ConsoleElement } from '../base';
import type { LiveEvent } from '../events';
import { FreshReads } from '../fresh-reads';
import { ago, may, reportError, shell } from '../state';

/** Presence as the live stream last told it: since when, and why (the event's detail / reason). */
interface Presence {
  since: string | null;
  reason: string | null;
}

const STATUSES: PresenceStatus[] = ['online', 'offline', 'unknown', 'disabled'];

/** Fleet: stores → agents → terminals, with live presence from the event stream, counts, filters and search. */
export class FleetPage extends ConsoleElement {
  stores: Store[] = [];
  agents: Agent[] = [];
  terminals: Terminal[] = [];
  presence = new Map<string, Presence>();
  loading = true;
  search = '';
  status = '';
  protocol = '';
  storeId = '';
  private unsubscribe?: () => void;
  /** The reads of the fleet and the presence events applied in place, in order (an answer never undoes an event). */
  private readonly reads = new FreshReads();

  override connectedCallback(): void {
    super.connectedCallback();
    this.unsubscribe = shell.stream.onEvent((e) => this.onEvent(e));
    void this.load();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
  }

  private async load(): Promise<void> {
    try {
      await this.reads.load(
        () => Promise.all([api.stores(), api.agents(), api.terminals()]),
        ([stores, agents, terminals]) => this.set({ stores, agents, terminals, loading: false }),
      );
    } catch (err) {
      this.set({ loading: false });
      reportError(err);
    }
  }

  private onEvent(e: LiveEvent): void {
    if (e.type === 'terminal.online' || e.type === 'terminal.offline') {
      const id = e.subjectId ?? String(e.data.terminalId);
      const status: PresenceStatus = e.type === 'terminal.online' ? 'online' : 'offline';
      const reason = (e.data.detail ?? e.data.reason ?? null) as string | null;
      this.presence.set(id, { since: e.createdAt, reason });
      this.reads.patch(() =>
        this.set({
          terminals: this.terminals.map((t) => (t.id === id ? { ...t, status, lastSeenAt: status === 'online' ? e.createdAt : t.lastSeenAt } : t)),
        }),
      );
    } else if (e.type === 'agent.online' || e.type === 'agent.offline') {
      const id = e.subjectId ?? String(e.data.agentId);
      const status = e.type === 'agent.online' ? 'online' : 'offline';
      this.reads.patch(() => this.set({ agents: this.agents.map((a) => (a.id === id ? { ...a, status } : a)) }));
    } else if (e.type.startsWith('terminal.') || e.type.startsWith('agent.')) {
      void this.load();
    }
  }

  private matchesFilters(t: Terminal): boolean {
    const q = this.search.trim().toLowerCase();
    if (q && ![t.name, t.terminalId ?? '', t.id, t.protocol].some((v) => v.toLowerCase().includes(q))) return false;
    if (this.status && t.status !== this.status) return false;
    if (this.protocol && t.protocol !== this.protocol) return false;
    if (this.storeId && t.storeId !== this.storeId) return false;
    return true;
  }

  override render() {
    const count = (s: PresenceStatus) => this.terminals.filter((t) => t.status === s).length;
    const protocols = [...new Set(this.terminals.map((t) => t.protocol))].sort();
    const shown = this.terminals.filter((t) => this.matchesFilters(t));
    const stores = this.stores.filter((s) => shown.some((t) => t.storeId === s.id));
    return html`
      <h1 tabindex="-1">Fleet</h1>
      <section aria-label="Counts" class="counts">
        <div class="count"><span class="n" data-testid="count-stores">${this.stores.length}</span> stores</div>
        <div class="count"><span class="n" data-testid="count-agents">${this.agents.length}</span> agents</div>
        <div class="count"><span class="n" data-testid="count-terminals">${this.terminals.length}</span> terminals</div>
        ${STATUSES.map((s) => html`<div class="count ${s}"><span class="n" data-testid="count-${s}">${count(s)}</span> ${s}</div>`)}
      </section>
      <form class="filters" role="search" aria-label="Filter terminals" @submit=${(e: Event) => e.preventDefault()}>
        <label
          >Search
          <input
            type="search"
            .value=${this.search}
            @input=${(e: InputEvent) => this.set({ search: (e.target as HTMLInputElement).value })}
            placeholder="name, TID, id"
        /></label>
        <label
          >Status
          <select @change=${(e: Event) => this.set({ status: (e.target as HTMLSelectElement).value })}>
            <option value="">any</option>
            ${STATUSES.map((s) => html`<option value=${s} ?selected=${this.status === s}>${s}</option>`)}
          </select></label
        >
        <label
          >Protocol
          <select @change=${(e: Event) => this.set({ protocol: (e.target as HTMLSelectElement).value })}>
            <option value="">any</option>
            ${protocols.map((p) => html`<option value=${p} ?selected=${this.protocol === p}>${p}</option>`)}
          </select></label
        >
        <label
          >Store
          <select @change=${(e: Event) => this.set({ storeId: (e.target as HTMLSelectElement).value })}>
            <option value="">any</option>
            ${this.stores.map((s) => html`<option value=${s.id} ?selected=${this.storeId === s.id}>${s.name}</option>`)}
          </select></label
        >
      </form>
      ${this.loading ? html`<p aria-live="polite">Loading…</p>` : nothing} ${!this.loading && shown.length === 0 ? html`<p>No terminal matches.</p>` : nothing}
      ${stores.map((s) => this.renderStore(s, shown))}
    `;
  }

  private renderStore(store: Store, shown: Terminal[]) {
    const terminals = shown.filter((t) => t.storeId === store.id);
    const agentIds = [...new Set(terminals.map((t) => t.agentId))];
    return html`
      <section class="store" aria-labelledby="store-${store.id}">
        <h2 id="store-${store.id}">${store.name} <small>${store.timeZone}${store.address ? ` · ${store.address}` : ''}</small></h2>
        ${agentIds.map((agentId) => {
          const agent = this.agents.find((a) => a.id === agentId);
          const rows = terminals.filter((t) => t.agentId === agentId);
          return html`
            <h3>
              ${
                agent
                  ? html`Agent ${agent.name} <span class="badge ${agent.status}" data-testid="agent-status">${agent.status}</span>
                      <small>last seen ${ago(agent.lastSeenAt)}</small>`
                  : 'No agent'
              }
            </h3>
            <table class="grid">
              <caption class="sr-only">
                Terminals of ${agent?.name ?? 'no agent'} in ${store.name}
              </caption>
              <thead>
                <tr>
                  <th scope="col">Terminal</th>
                  <th scope="col">Protocol</th>
                  <th scope="col">Presence</th>
                  <th scope="col">Since</th>
                  <th scope="col">Last heartbeat</th>
                  <th scope="col">Reason</th>
                  <th scope="col"><span class="sr-only">Actions</span></th>
                </tr>
              </thead>
              <tbody>
                ${rows.map((t) => this.renderTerminal(t))}
              </tbody>
            </table>
          `;
        })}
      </section>
    `;
  }

  private renderTerminal(t: Terminal) {
    const p = this.presence.get(t.id);
    return html`<tr data-terminal=${t.id}>
      <td><a href="#/terminals/${t.id}">${t.name}</a>${t.terminalId ? html` <small>TID ${t.terminalId}</small>` : nothing}</td>
      <td>${t.protocol}${t.dialect ? html` <small>${t.dialect}</small>` : nothing}</td>
      <td><span class="badge ${t.status}" data-testid="presence">${t.status}</span></td>
      <td>${p?.since ? ago(p.since) : '—'}</td>
      <td>${ago(t.lastSeenAt)}</td>
      <td>${p?.reason ?? '—'}</td>
      <td>${may('operations:write') && t.status === 'online' ? html`<a href="#/pay?terminal=${t.id}">Take a payment</a>` : nothing}</td>
    </tr>`;
  }
}
