import { html, nothing } from 'lit';

import { type ApiKey, type AuditEntry, type Campaign, type Delivery, api, type Schemas, type Webhook } from '../api';
import { ConsoleElement } from '../base';
import { may, notify, reportError, shell } from '../state';

/** While a shown delivery is still pending or retrying, the log is read again this often. */
const DELIVERY_REFRESH_MS = 1000;

/** Webhook endpoints with their delivery log and redelivery; the log follows deliveries still in flight. */
export class WebhooksPage extends ConsoleElement {
  webhooks: Webhook[] = [];
  selected: Webhook | null = null;
  deliveries: Delivery[] = [];
  private refresh?: ReturnType<typeof setTimeout>;

  override connectedCallback(): void {
    super.connectedCallback();
    api.webhooks().then((webhooks) => this.set({ webhooks }), reportError);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    clearTimeout(this.refresh);
  }

  private async open(w: Webhook): Promise<void> {
    clearTimeout(this.refresh);
    try {
      const deliveries = (await api.deliveries(w.id)).data;
      this.set({ selected: w, deliveries });
      // Delivery has no live event of its own: re-read while the worker still has something to do.
      if (this.isConnected && deliveries.some((d) => d.status === 'pending' || d.status === 'retrying'))
        this.refresh = setTimeout(() => this.selected?.id === w.id && void this.open(w), DELIVERY_REFRESH_MS);
    } catch (err) {
      reportError(err);
    }
  }

  private async redeliver(d: Delivery): Promise<void> {
    try {
      await api.redeliver(this.selected!.id, d.id);
      notify('info', `Delivery of ${d.eventType} queued again`);
      await this.open(this.selected!);
    } catch (err) {
      reportError(err);
    }
  }

  override render() {
    const canWrite = may('webhooks:write');
    return html`
      <h1 tabindex="-1">Webhooks</h1>
      ${this.webhooks.length === 0 ? html`<p>No webhook endpoint.</p>` : nothing}
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">URL</th>
            <th scope="col">Events</th>
            <th scope="col">Enabled</th>
            <th scope="col"><span class="sr-only">Deliveries</span></th>
          </tr>
        </thead>
        <tbody>
          ${this.webhooks.map(
            (w) =>
              html`<tr>
                <td>${w.url}${w.description ? html` <small>${w.description}</small>` : nothing}</td>
                <td>${w.eventTypes.join(', ') || 'all'}</td>
                <td>${w.enabled ? 'yes' : 'no'}</td>
                <td><button type="button" @click=${() => this.open(w)}>Delivery log</button></td>
              </tr>`,
          )}
        </tbody>
      </table>
      ${
        this.selected
          ? html`<section aria-labelledby="deliveries" class="store">
              <h2 id="deliveries">Deliveries to ${this.selected.url}</h2>
              <table class="grid">
                <thead>
                  <tr>
                    <th scope="col">Event</th>
                    <th scope="col">Status</th>
                    <th scope="col">Attempts</th>
                    <th scope="col">Last answer</th>
                    <th scope="col">When</th>
                    <th scope="col"><span class="sr-only">Redeliver</span></th>
                  </tr>
                </thead>
                <tbody>
                  ${this.deliveries.map(
                    (d) =>
                      html`<tr data-delivery=${d.id}>
                        <td>${d.eventType}</td>
                        <td><span class="badge ${d.status === 'delivered' ? 'approved' : d.status}" data-testid="delivery-status">${d.status}</span></td>
                        <td>${d.attempts}</td>
                        <td>${d.lastStatusCode ?? '—'} ${d.lastError ?? ''}</td>
                        <td>${new Date(d.createdAt).toLocaleString()}</td>
                        <td>
                          <button type="button" ?disabled=${!canWrite} title=${canWrite ? '' : 'Needs an admin key'} @click=${() => this.redeliver(d)}>
                            Redeliver
                          </button>
                        </td>
                      </tr>`,
                  )}
                </tbody>
              </table>
            </section>`
          : nothing
      }
    `;
  }
}

const ROLES = ['read', 'operate', 'admin'];

/** The tenant's API keys (admin keys only): list, create (the key shown once), revoke. */
export class ApiKeysPage extends ConsoleElement {
  keys: ApiKey[] = [];
  created: string | null = null;

  override connectedCallback(): void {
    super.connectedCallback();
    if (may('admin')) void this.load();
  }

  private async load(): Promise<void> {
    try {
      this.set({ keys: await api.apiKeys() });
    } catch (err) {
      reportError(err);
    }
  }

  private async create(e: SubmitEvent): Promise<void> {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const name = (form.elements.namedItem('name') as HTMLInputElement).value;
    const role = (form.elements.namedItem('role') as HTMLSelectElement).value as Schemas['KeyScope'];
    try {
      const key = await api.createApiKey({ name, scopes: [role] });
      form.reset();
      this.set({ created: key.apiKey });
      await this.load();
    } catch (err) {
      reportError(err);
    }
  }

  private async revoke(k: ApiKey): Promise<void> {
    try {
      await api.revokeApiKey(k.id);
      notify('info', `Key ${k.name} revoked`);
      await this.load();
    } catch (err) {
      reportError(err);
    }
  }

  override render() {
    if (!may('admin'))
      return html`<h1 tabindex="-1">API keys</h1>
        <p class="notice info">Managing API keys needs an <code>admin</code> key.</p>`;
    return html`
      <h1 tabindex="-1">API keys</h1>
      <form class="filters" aria-label="Create an API key" @submit=${(e: SubmitEvent) => this.create(e)}>
        <label>Name <input name="name" required maxlength="100" autocomplete="off" /></label>
        <label
          >Role
          <select name="role">
            ${ROLES.map((r) => html`<option>${r}</option>`)}
          </select></label
        >
        <button type="submit">Create key</button>
      </form>
      ${
        this.created
          ? html`<p class="notice info" role="status">
              New key (shown only now, copy it): <code data-testid="new-key">${this.created}</code>
              <button type="button" @click=${() => this.set({ created: null })}>Done</button>
            </p>`
          : nothing
      }
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Prefix</th>
            <th scope="col">Scopes</th>
            <th scope="col">Last used</th>
            <th scope="col">State</th>
            <th scope="col"><span class="sr-only">Revoke</span></th>
          </tr>
        </thead>
        <tbody>
          ${this.keys.map(
            (k) =>
              html`<tr>
                <td>${k.name}</td>
                <td><code>${k.prefix}</code></td>
                <td>${k.scopes.join(', ')}</td>
                <td>${k.lastUsedAt ? new Date(k.lastUsedAt).toLocaleString() : 'never'}</td>
                <td>${k.revokedAt ? html`<span class="badge revoked">revoked</span>` : html`<span class="badge approved">active</span>`}</td>
                <td>${k.revokedAt || k.id === shell.session?.keyId ? nothing : html`<button type="button" @click=${() => this.revoke(k)}>Revoke</button>`}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    `;
  }
}

/** The tenant's audit log, newest first, filtered by resource type or action. */
export class AuditPage extends ConsoleElement {
  entries: AuditEntry[] = [];
  resourceType = '';
  action = '';

  override connectedCallback(): void {
    super.connectedCallback();
    void this.load();
  }

  private async load(): Promise<void> {
    try {
      const page = await api.auditLog({ resourceType: this.resourceType || undefined, action: this.action || undefined });
      this.set({ entries: page.data });
    } catch (err) {
      reportError(err);
    }
  }

  override render() {
    return html`
      <h1 tabindex="-1">Audit log</h1>
      <form class="filters" aria-label="Filter the audit log" @submit=${(e: SubmitEvent) => (e.preventDefault(), void this.load())}>
        <label
          >Resource type
          <input .value=${this.resourceType} @input=${(e: Event) => (this.resourceType = (e.target as HTMLInputElement).value)} placeholder="terminal"
        /></label>
        <label
          >Action <input .value=${this.action} @input=${(e: Event) => (this.action = (e.target as HTMLInputElement).value)} placeholder="operation.create"
        /></label>
        <button type="submit">Filter</button>
      </form>
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Action</th>
            <th scope="col">Actor</th>
            <th scope="col">Resource</th>
            <th scope="col">Details</th>
          </tr>
        </thead>
        <tbody>
          ${this.entries.map(
            (a) =>
              html`<tr>
                <td>${new Date(a.createdAt).toLocaleString()}</td>
                <td>${a.action}</td>
                <td>${a.actorType} ${a.actorId?.slice(0, 8) ?? ''}</td>
                <td>${a.resourceType} ${a.resourceId?.slice(0, 8) ?? ''}</td>
                <td><code>${a.details ? JSON.stringify(a.details) : ''}</code></td>
              </tr>`,
          )}
        </tbody>
      </table>
      ${this.entries.length === 0 ? html`<p>No entry.</p>` : nothing}
    `;
  }
}

/** Fleet campaigns: waves, progress, pause / resume / cancel. */
export class CampaignsPage extends ConsoleElement {
  campaigns: Campaign[] = [];
  selected: Campaign | null = null;
  /** Bumped by every load and selection: an answer read before a later one is dropped. */
  private generation = 0;
  private unsubscribe?: () => void;

  override connectedCallback(): void {
    super.connectedCallback();
    this.unsubscribe = shell.stream.onEvent((e) => {
      if (e.type.startsWith('campaign.')) void this.load();
    });
    void this.load();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
  }

  private async load(): Promise<void> {
    const generation = ++this.generation;
    const selectedId = this.selected?.id;
    try {
      const page = await api.campaigns();
      const selected = selectedId ? await api.campaign(selectedId) : null;
      if (generation === this.generation) this.set({ campaigns: page.data, selected });
    } catch (err) {
      reportError(err);
    }
  }

  private async select(id: string): Promise<void> {
    const generation = ++this.generation;
    try {
      const selected = await api.campaign(id);
      if (generation === this.generation) this.set({ selected });
    } catch (err) {
      reportError(err);
    }
  }

  private async act(c: Campaign, action: 'pause' | 'resume' | 'cancel'): Promise<void> {
    try {
      const next = await api.campaignAction(c.id, action);
      notify('info', `Campaign ${next.name} is ${next.state}`);
      await this.load();
    } catch (err) {
      reportError(err);
    }
  }

  override render() {
    const canWrite = may('terminals:write');
    const why = canWrite ? '' : 'Needs an admin key';
    const pct = (c: Campaign) => (c.counts.total ? Math.round(((c.counts.succeeded + c.counts.failed + c.counts.skipped) / c.counts.total) * 100) : 0);
    return html`
      <h1 tabindex="-1">Campaigns</h1>
      ${this.campaigns.length === 0 ? html`<p>No campaign.</p>` : nothing}
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Operation</th>
            <th scope="col">State</th>
            <th scope="col">Progress</th>
            <th scope="col"><span class="sr-only">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          ${this.campaigns.map(
            (c) =>
              html`<tr data-campaign=${c.id}>
                <td>
                  <button type="button" class="link" @click=${() => this.select(c.id)}>${c.name}</button>
                </td>
                <td>${c.operation.type}</td>
                <td>
                  <span class="badge ${c.state}" data-testid="campaign-state">${c.state}</span
                  >${c.pauseReason ? html` <small>${c.pauseReason}</small>` : nothing}
                </td>
                <td><progress max="100" value=${pct(c)} aria-label="Progress of ${c.name}"></progress> ${c.counts.succeeded}/${c.counts.total}</td>
                <td>
                  ${c.state === 'running' ? html`<button type="button" ?disabled=${!canWrite} title=${why} @click=${() => this.act(c, 'pause')}>Pause</button>` : nothing}
                  ${c.state === 'paused' ? html`<button type="button" ?disabled=${!canWrite} title=${why} @click=${() => this.act(c, 'resume')}>Resume</button>` : nothing}
                  ${
                    c.state === 'running' || c.state === 'paused'
                      ? html`<button type="button" ?disabled=${!canWrite} title=${why} @click=${() => this.act(c, 'cancel')}>Cancel</button>`
                      : nothing
                  }
                </td>
              </tr>`,
          )}
        </tbody>
      </table>
      ${
        this.selected
          ? html`<section class="store" aria-labelledby="waves">
              <h2 id="waves">Waves of ${this.selected.name}</h2>
              <table class="grid">
                <thead>
                  <tr>
                    <th scope="col">Wave</th>
                    <th scope="col">Size</th>
                    <th scope="col">State</th>
                    <th scope="col">Succeeded / failed / pending</th>
                  </tr>
                </thead>
                <tbody>
                  ${this.selected.waves.map(
                    (w) =>
                      html`<tr>
                        <td>${w.index}${w.canary ? ' (canary)' : ''}</td>
                        <td>${w.size}</td>
                        <td>${w.state}</td>
                        <td>${w.counts.succeeded} / ${w.counts.failed} / ${w.counts.pending + w.counts.running + w.counts.retrying}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>
            </section>`
          : nothing
      }
    `;
  }
}
