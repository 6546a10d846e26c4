import './styles.css';

import { AppShell } from './app';
import { OperationCard } from './components/operation-card';
import { ApiKeysPage, AuditPage, CampaignsPage, WebhooksPage } from './pages/admin';
import { FleetPage } from './pages/fleet';
import { OperationsPage } from './pages/operations';
import { PayPage } from './pages/pay';
import { PlotsPage } from './pages/plots';
import { SettlementPage, SettlementsPage } from './pages/settlements';
import { TerminalPage } from './pages/terminal';
import { WalletPage } from './pages/wallet';

customElements.define('po-operation', OperationCard);
customElements.define('po-fleet', FleetPage);
customElements.define('po-terminal', TerminalPage);
customElements.define('po-operations', OperationsPage);
customElements.define('po-pay', PayPage);
customElements.define('po-settlements', SettlementsPage);
customElements.define('po-settlement', SettlementPage);
customElements.define('po-wallet', WalletPage);
customElements.define('po-webhooks', WebhooksPage);
customElements.define('po-api-keys', ApiKeysPage);
customElements.define('po-audit', AuditPage);
customElements.define('po-campaigns', CampaignsPage);
customElements.define('po-plots', PlotsPage);
customElements.define('po-app', AppShell);
