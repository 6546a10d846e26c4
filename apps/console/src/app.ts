import { html, nothing } from 'lit';
import { keyed } from 'lit/directives/keyed.js';

import { type ApiError, api, keyStore } from './api';
import { ConsoleElement } from './base';
import { hintView, noticeView, streamBadgeView, streamErrorView } from './components/notice';
import type { StreamState } from './events';
import { parseRoute, type Route } from './routes';
import { describeError, errorHint, role, shell } from './state';

/** The main navigation: each page at `#/<page>`. */
const NAV: { page: Route['page']; label: string }[] = [
  { page: 'fleet', label: 'Fleet' },
  { page: 'operations', label: 'Live operations' },
  { page: 'pay', label: 'Take a payment' },
  { page: 'settlements', label: 'Settlements' },
  { page: 'plots', label: 'Plots' },
  { page: 'wallet', label: 'Wallet payments' },
  { page: 'campaigns', label: 'Campaigns' },
  { page: 'webhooks', label: 'Webhooks' },
  { page: 'api-keys', label: 'API keys' },
  { page: 'audit', label: 'Audit log' },
];

/** The console: sign-in, then the navigation, the notice region and the current page (hash routing). */
export class AppShell extends ConsoleElement {
  route: Route = parseRoute(location.hash);
  signedIn = false;
  checking = false;
  /** Why the last sign-in failed (shown with its hint), until the next attempt. */
  signInFailure: unknown = undefined;
  streamState: StreamState = 'connecting';
  /** Why the gateway refuses the live stream, until it is live again (events.ts `lastError`). */
  streamError: ApiError | undefined;

  private readonly onHash = () => {
    this.set({ route: parseRoute(location.hash) });
    shell.notice = null;
    queueMicrotask(() => this.querySelector<HTMLElement>('main h1')?.focus());
  };
  private readonly onNotice = () => this.requestUpdate();

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener('hashchange', this.onHash);
    shell.noticeListeners.add(this.onNotice);
    shell.stream.onState((streamState, streamError) => this.set({ streamState, streamError }));
    const key = keyStore.get();
    if (key) void this.signIn(key);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    window.removeEventListener('hashchange', this.onHash);
    shell.noticeListeners.delete(this.onNotice);
  }

  private async signIn(key: string): Promise<void> {
    this.set({ checking: true, signInFailure: undefined });
    try {
      shell.session = await api.session(key);
      keyStore.set(key);
      shell.stream.start();
      this.set({ signedIn: true, checking: false });
    } catch (err) {
      keyStore.clear();
      this.set({ checking: false, signInFailure: err });
    }
  }

  private signOut(): void {
    keyStore.clear();
    shell.stream.stop();
    shell.session = null;
    this.set({ signedIn: false });
  }

  private onSubmit(e: SubmitEvent): void {
    e.preventDefault();
    const input = (e.target as HTMLFormElement).elements.namedItem('apiKey') as HTMLInputElement;
    const key = input.value.trim();
    input.value = '';
    if (key) void this.signIn(key);
  }

  override render() {
    if (!this.signedIn) return this.renderSignIn();
    const r = this.route;
    const current = r.page === 'terminal' ? 'fleet' : r.page === 'settlement' ? 'settlements' : r.page;
    return html`
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <span class="brand">payorch console</span>
        <nav aria-label="Main">
          <ul>
            ${NAV.map((n) => html`<li><a href="#/${n.page}" aria-current=${n.page === current ? 'page' : nothing}>${n.label}</a></li>`)}
          </ul>
        </nav>
        <span class="who">
          ${streamBadgeView(this.streamState, this.streamError)}
          <span class="badge role" data-testid="role">key: ${role()}</span>
          <button type="button" @click=${() => this.signOut()}>Sign out</button>
        </span>
      </header>
      ${streamErrorView(this.streamError)} ${noticeView(shell.notice, () => ((shell.notice = null), this.requestUpdate()))}
      <main id="main" tabindex="-1">${this.renderPage(r)}</main>
    `;
  }

  private renderPage(r: Route) {
    switch (r.page) {
      case 'fleet':
        return html`<po-fleet></po-fleet>`;
      case 'terminal':
        return html`<po-terminal .terminalId=${r.id!}></po-terminal>`;
      case 'operations':
        return html`<po-operations></po-operations>`;
      case 'pay':
        return html`<po-pay .preselect=${r.params.get('terminal') ?? ''}></po-pay>`;
      case 'settlements':
        // A new calendar for a new store / month / day in the URL (the page itself only replaces the URL).
        return keyed(r.params.toString(), html`<po-settlements .params=${r.params}></po-settlements>`);
      case 'settlement':
        return html`<po-settlement .settlementId=${r.id!}></po-settlement>`;
      case 'wallet':
        // As the settlements: a new page for new filters in the URL (the page itself only replaces the URL).
        return keyed(r.params.toString(), html`<po-wallet .params=${r.params}></po-wallet>`);
      case 'webhooks':
        return html`<po-webhooks></po-webhooks>`;
      case 'api-keys':
        return html`<po-api-keys></po-api-keys>`;
      case 'audit':
        return html`<po-audit></po-audit>`;
      case 'campaigns':
        return html`<po-campaigns></po-campaigns>`;
      case 'plots':
        return html`<po-plots></po-plots>`;
    }
  }

  private renderSignIn() {
    return html`
      <main id="main" class="signin">
        <h1>payorch console</h1>
        <form @submit=${(e: SubmitEvent) => this.onSubmit(e)} aria-describedby="signin-help">
          <label for="apiKey">API key</label>
          <input id="apiKey" name="apiKey" type="password" autocomplete="off" required placeholder="pok_…" />
          <p id="signin-help" class="help">
            A <code>read</code> key shows everything; an <code>operate</code> or <code>admin</code> key can also take payments, refund, cancel and re-run
            settlements. The key is kept in this tab's session storage only.
          </p>
          <button type="submit" ?disabled=${this.checking}>${this.checking ? 'Checking…' : 'Sign in'}</button>
          ${
            this.signInFailure !== undefined
              ? html`<p role="alert" class="error" data-testid="signin-error">
                  ${describeError(this.signInFailure)}${hintView(errorHint(this.signInFailure), 'signin-error-hint')}
                </p>`
              : nothing
          }
        </form>
      </main>
    `;
  }
}
