import { z } from 'zod';

import { bool, cidrList, isRedisUrl, logLevel, masterKey, port, postgresUrl, previousMasterKeys, redisUrl } from './fields';

/**
 * One schema per app. Each entry's `.describe()` text feeds the README configuration table
 * (scripts/config-table.ts), so documentation cannot drift from the code.
 */

const common = {
  DATABASE_APP_URL: postgresUrl().describe('PostgreSQL URL of the application role `payorch_app` (subject to row-level security).'),
  DATABASE_PREPARED_STATEMENTS: bool(true).describe(
    "The hot path's statements are prepared on the server once per connection (PostgreSQL plans them once instead of on every run; docs/scaling.md). Set false behind a pooler that cannot keep prepared statements (PgBouncer in transaction mode before 1.21, or without `max_prepared_statements`).",
  ),
  EGRESS_ALLOW_CIDRS: cidrList().describe(
    'Operator egress policy: special-purpose ranges (private, loopback, link-local…) that tenant-directed connections (relay, webhooks, Assist) may reach, **open to every tenant and every channel**, e.g. `10.20.0.0/16`. Empty: only public addresses. To open a range to one tenant for one channel, grant it instead (`npm run admin -- egress grant`, docs/security.md).',
  ),
  EGRESS_DNS_MAX_IN_FLIGHT: z.coerce
    .number()
    .int()
    .min(1)
    .max(64)
    .default(2)
    .describe(
      'Host name lookups the process runs at once for tenant-directed destinations; one tenant starts at most half of them. A lookup holds its slot until it ends, even after its caller gave up: a DNS query (c-ares, off the threadpool) by its deadline (EGRESS_DNS_TIMEOUT_MS at most); a name DNS says does not exist is then looked up in the hosts file, read by the process (never getaddrinfo, whose thread no deadline frees; docs/security.md).',
    ),
  EGRESS_DNS_MAX_QUEUED: z.coerce
    .number()
    .int()
    .min(0)
    .max(10_000)
    .default(64)
    .describe(
      'Host name lookups waiting for a slot (EGRESS_DNS_MAX_IN_FLIGHT), a quarter of them at most for one tenant; one more is refused at once, and a waiting one is refused when its deadline passes (the destination reads as not resolving).',
    ),
  EGRESS_DNS_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(60_000)
    .default(5_000)
    .describe(
      "Longest DNS query (A and AAAA, each DNS server of resolv.conf asked once with an equal share) of a tenant-directed destination, whatever its caller's own deadline (an Assist request's is ASSIST_TIMEOUT_MS); a name whose DNS server does not answer in time does not resolve, and frees its lookup slot then (docs/security.md).",
    ),
  LOG_LEVEL: logLevel().describe('pino log level.'),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[^{}\s]+$/, 'must not contain braces or spaces (Redis Cluster hash tags are set by payorch, docs/architecture.md)')
    .default('payorch')
    .describe('Prefix of every Redis key and BullMQ queue (BullMQ keys: `<prefix>:{bull}:<queue>:…`).'),
  REDIS_URL: redisUrl().describe(
    'Redis URL (BullMQ, rate limits, command bus): `redis://` / `rediss://` for one server, or `redis-cluster://[user:password@]host:port[,host:port…]` (`rediss-cluster://` with TLS) for a Redis Cluster, naming some of its nodes (the rest are discovered).',
  ),
  SHUTDOWN_DRAIN_DELAY_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(120_000)
    .default(0)
    .describe(
      'After SIGTERM, how long `/health/ready` answers 503 while the app still serves, so load balancers stop routing to it before it stops accepting (Kubernetes: about 5000).',
    ),
  SHUTDOWN_GRACE_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .max(600_000)
    .default(25_000)
    .describe(
      "Bound of the graceful shutdown after SIGTERM (drain delay included); past it the process exits 1 and what still runs is left to recovery. Keep it below the orchestrator's kill timeout (terminationGracePeriodSeconds, stop_grace_period).",
    ),
};

/** Wallet payments (Assist TokenPay): the resolution job's retry policy, shared by producer (gateway) and sweep (worker). */
const walletResolveJob = {
  WALLET_RESOLVE_ATTEMPTS: z.coerce
    .number()
    .int()
    .min(1)
    .max(100)
    .default(12)
    .describe('Attempts of one `wallet_payment.resolve` job before it is left failed (the sweep re-runs it later).'),
  WALLET_RESOLVE_BACKOFF_MS: z.coerce
    .number()
    .int()
    .min(10)
    .default(10_000)
    .describe("Base delay of the resolution job's exponential backoff (attempt n waits base × 2^(n-1))."),
};

export const gatewayConfigSchema = z.object({
  ...common,
  GATEWAY_HOST: z.string().default('127.0.0.1').describe('Interface the REST API listens on.'),
  GATEWAY_PORT: port(3000).describe('Port of the REST API (`/v1`, `/docs`, `/health`, `/metrics`).'),
  PAYORCH_MASTER_KEY: masterKey().describe('Active key-encryption key for secrets at rest: `<keyId>:<base64 32 bytes>`.'),
  PAYORCH_PREVIOUS_MASTER_KEYS: previousMasterKeys().describe(
    'Comma-separated retired keys (`<keyId>:<base64>`) still accepted for decryption during rotation.',
  ),
  ASSIST_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(300_000)
    .default(60_000)
    .describe('Deadline of one Assist TokenPay payment request (headers and body); past it the payment is UNKNOWN and resolved by a job.'),
  AUTH_FAILURE_LIMIT: z.coerce
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(20)
    .describe(
      'Failed API-key authentications one source address (see TRUST_PROXY) may make per AUTH_FAILURE_WINDOW_SECONDS; past it every request from it is 429 without its key being checked.',
    ),
  AUTH_FAILURE_WINDOW_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .max(86_400)
    .default(900)
    .describe('Window of AUTH_FAILURE_LIMIT, opened by the first failure; a blocked address waits until it ends (Retry-After).'),
  RATE_LIMIT_PER_MINUTE: z.coerce
    .number()
    .int()
    .min(1)
    .default(600)
    .describe('Requests per API key per minute (event WebSocket upgrades included); the tenant as a whole also has RATE_LIMIT_PER_TENANT_PER_MINUTE.'),
  RATE_LIMIT_PER_TENANT_PER_MINUTE: z.coerce
    .number()
    .int()
    .min(1)
    .default(6000)
    .describe(
      'Requests per tenant per minute, all its API keys together (each key also keeps RATE_LIMIT_PER_MINUTE), so more keys do not buy more requests; past it every key of the tenant is 429 `RATE_LIMITED` (`details.scope: tenant`) until the window ends. Raise it for a tenant whose fleet needs more (docs/security.md, "Per-tenant limits").',
    ),
  API_KEYS_MAX_PER_TENANT: z.coerce
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(100)
    .describe(
      'Working (unrevoked, unexpired) API keys one tenant may hold; `POST /v1/api-keys` past it is 409 `CONFLICT` (`details.reason: api_key_limit`) until one is revoked. The operator CLI (`apikey create`) is not limited.',
    ),
  API_KEY_CACHE_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(60_000)
    .default(5_000)
    .describe(
      "How long a gateway keeps an API key's row after looking it up (0: looked up on every request). A revocation or a tenant's status change is announced to every gateway at once; this bounds a lost announcement.",
    ),
  WALLET_RESOLVE_DELAY_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(30_000)
    .describe('Delay before the first `wallet_payment.resolve` attempt of a payment left UNKNOWN, in process or requiring action.'),
  ...walletResolveJob,
  TRUST_PROXY: bool(false).describe(
    "Behind our proxy (deploy/nginx, an ingress): a client's address is the right-most X-Forwarded-For entry, the one the proxy appended (the entries left of it are whatever the client sent). Used by the failed-authentication throttle and the logs.",
  ),
  WEBHOOK_ALLOW_HTTP: bool(false).describe('Accept plain `http://` webhook URLs (development only; the egress policy still applies).'),
  WEBHOOK_ENDPOINTS_MAX_PER_TENANT: z.coerce
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(16)
    .describe(
      'Webhook endpoints one tenant may have (enabled or not); `POST /v1/webhooks` past it is 409 `CONFLICT` (`details.reason: webhook_endpoint_limit`) until one is deleted. Every event is delivered once per subscribed endpoint: the bound keeps one event from becoming thousands of deliveries.',
    ),
  SETTLEMENT_SCHEDULES_MAX_PER_TENANT: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(10_000)
    .describe(
      "Settlement schedules one tenant may have (enabled or not); `POST /v1/settlement-schedules` past it is 409 `CONFLICT` (`details.reason: settlement_schedule_limit`) until one is deleted. Each is a BullMQ job scheduler in Redis, a firing a day and a row every worker's schedule sync reads.",
    ),
  CAMPAIGNS_MAX_PER_TENANT: z.coerce
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(50)
    .describe(
      'Campaigns one tenant may have open (running or paused) or have created in the last 24 hours, together; `POST /v1/campaigns` past it is 409 `CONFLICT` (`details.reason: campaign_limit`). Each writes a row per terminal it selects (up to 50,000) and a BullMQ job per terminal of its running wave.',
    ),
  EVENTS_HEARTBEAT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(300_000)
    .default(15_000)
    .describe('Live event stream (SSE / WebSocket): interval of the keep-alive comment / ping.'),
  IDEMPOTENCY_CLAIM_LEASE_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .max(86_400_000)
    .default(360_000)
    .describe(
      'An Idempotency-Key claimed by a request that never answered (its gateway died) is taken over by a repeat after this long; keep it above the longest request (`?wait=` ≤ 120 s).',
    ),
  EVENTS_CLIENT_BUFFER_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024)
    .describe('Live event stream: bytes queued for one slow client before it is disconnected (it reconnects with Last-Event-ID).'),
  EVENTS_CATCHUP_LIMIT: z.coerce
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(1000)
    .describe('Live event stream: most events replayed from the database on (re)connect with Last-Event-ID / ?after=.'),
  OPERATION_WAITS_MAX_PER_TENANT: z.coerce
    .number()
    .int()
    .min(0)
    .max(100_000)
    .default(256)
    .describe(
      "`POST /v1/terminals/{id}/operations?wait=` requests one tenant may hold waiting for their outcome at once on one gateway instance (each holds a connection, a listener of the tenant's events and a timer for up to 120 s). One more answers at once with the operation as it is, as `wait=0` (counted in payorch_operation_waits_refused_total); 0: never wait.",
    ),
  EVENTS_MAX_STREAMS_PER_TENANT: z.coerce
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(50)
    .describe(
      'Live event stream: streams (SSE and WebSocket together) one tenant may hold open at once on one gateway instance; one more is 429 `TOO_MANY_STREAMS` until one of them closes. Each holds a connection, a heartbeat timer and up to EVENTS_CLIENT_BUFFER_BYTES of send buffer.',
    ),
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

/** RECOVERY_PENDING_AFTER_MS of the connector and of the worker: one rule, "PENDING this long was never sent". */
const recoveryPendingAfterMs = () => z.coerce.number().int().min(1000).default(30_000);

export const connectorConfigSchema = z.object({
  ...common,
  CONNECTOR_HOST: z.string().default('127.0.0.1').describe('Interface the device connector listens on.'),
  CONNECTOR_INSTANCE_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/)
    .optional()
    .describe('Unique id of this connector instance (default: hostname-pid).'),
  CONNECTOR_PORT: port(3001).describe('Port of the agent WebSocket endpoint (`/agent`), `/health` and `/metrics`.'),
  PAYORCH_MASTER_KEY: masterKey().describe('Active key-encryption key (terminal credentials).'),
  PAYORCH_PREVIOUS_MASTER_KEYS: previousMasterKeys().describe('Retired keys still accepted for decryption.'),
  OPERATION_FRAME_JOURNAL: z
    .enum(['on', 'off'])
    .default('on')
    .describe(
      'Journal every protocol frame of an operation, masked (no full PAN, track data, PIN block, key or password), as a `frame` step of its timeline (docs/operations.md). `off`: drivers do not decode a copy of the bytes and timelines carry no frames.',
    ),
  PENDING_HOLD_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(60_000)
    .default(10_000)
    .describe(
      "How often an operation waiting in a terminal's queue, or for its driver to open the terminal's session before the claim, refreshes its PENDING row, so the recovery sweep (RECOVERY_PENDING_AFTER_MS) does not fail it as never sent.",
    ),
  RECOVERY_PENDING_AFTER_MS: recoveryPendingAfterMs().describe(
    "The recovery of a terminal that came online here fails a PENDING operation as never sent only once it is unchanged this long (a younger one's command may still be on its way on the command bus, which drops a queued execute after 15 s; the sweep fails it if it never comes). Keep it equal to the worker's RECOVERY_PENDING_AFTER_MS.",
  ),
  CONNECTOR_DATABASE_POOL_SIZE: z.coerce
    .number()
    .int()
    .min(2)
    .max(200)
    .default(10)
    .describe(
      "PostgreSQL connections of one connector: one pool, shared by Prisma and the bare driver (Database.connect), so at most this many. An agent's tunnel set-up is one transaction and presence writes are batched per tenant, so a reconnect storm of thousands of agents fits in the default; size PostgreSQL's `max_connections` for this × instances (docs/scaling.md).",
    ),
  CONNECTOR_TERMINAL_INFO_MAX_AGE_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(6 * 60 * 60 * 1000)
    .describe(
      "A tunnel's set-up reads a terminal's info (model, serial, firmware: Terminal.info) from the terminal only when the stored one is older than this (or was never read); its link is probed either way. `POST /v1/terminals/{id}/refresh-info` reads it at any time. 0: read at every set-up (a reconnect storm then also interrogates every terminal).",
    ),
  CONNECTOR_LISTEN_BACKLOG: z.coerce
    .number()
    .int()
    .min(511)
    .max(65_535)
    .default(4096)
    .describe(
      "Accept queue of the connector's listening socket (Node's default is 511). In a reconnect storm thousands of agents dial at once; connections beyond the queue are dropped by the kernel and their SYNs retried after 1, 3, 7 s, which ran agents into their 15 s opening-handshake timeout (issue 19). The kernel caps it at `net.core.somaxconn` (4096 by default since Linux 5.4): raise both for more agents per instance (docs/scaling.md).",
    ),
  CONNECTOR_OWNERSHIP_TTL_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .max(300_000)
    .default(15_000)
    .describe(
      "TTL of this instance's leases in Redis, refreshed every third of it: the key naming the instance that holds an agent, and the leases of its relay sessions (RELAY_MAX_CONNECTIONS_PER_TENANT). A crashed instance's agents and relay sessions stop counting after it.",
    ),
  RELAY_CONNECT_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(120_000)
    .default(10_000)
    .describe('Joinproto relay: TCP connect timeout to the processing host.'),
  RELAY_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(4 * 1024 * 1024)
    .describe('Joinproto relay: bytes allowed per session in each direction before it is cut.'),
  RELAY_MAX_CONNECTIONS: z.coerce
    .number()
    .int()
    .min(1)
    .max(65_536)
    .default(256)
    .describe(
      "Joinproto relay: sessions at once on this connector instance, all tenants together, the opens still under way included. A session holds a socket and up to 1 MiB of the host's bytes the terminal has not read, so the default bounds the relay's buffers at about 270 MiB, within the connector's 768 MiB limit above its ~275 MB resident base (a pod's expected peak is tens of sessions). Past it a 91 is refused at once (`denied`, `Address not allowed by till`), counted in `payorch_connector_relay_sessions_refused_total{reason=\"connector_limit\"}` (docs/relay.md).",
    ),
  RELAY_MAX_CONNECTIONS_PER_TENANT: z.coerce
    .number()
    .int()
    .min(1)
    .max(65_536)
    .default(128)
    .describe(
      'Joinproto relay: sessions at once of one tenant (all its terminals) over every connector instance, the opens still under way included: leases in Redis (`<REDIS_KEY_PREFIX>:relay:sessions:{<tenantId>}`, CONNECTOR_OWNERSHIP_TTL_MS). While Redis is not connected, fails or does not answer within 200 ms, each instance counts the tenant\'s sessions on it alone (`payorch_connector_relay_sessions_unshared_total`); an instance never holds more than this of one tenant either way. Half of RELAY_MAX_CONNECTIONS by default: one tenant (its agents bridging many terminals, or forged frames for many terminal ids) cannot take the relay, its memory, file descriptors and egress connections, from the others. Past it a 91 is refused at once (`denied`, `Address not allowed by till`), counted in `payorch_connector_relay_sessions_refused_total{reason="tenant_limit"}` (docs/relay.md).',
    ),
  RELAY_MAX_CONNECTIONS_PER_TERMINAL: z.coerce
    .number()
    .int()
    .min(1)
    .max(64)
    .default(4)
    .describe('Joinproto relay: sessions open at once per terminal, the opens still under way (egress checks, DNS, connect) included.'),
  RELAY_MAX_DURATION_MS: z.coerce.number().int().min(1000).max(3_600_000).default(120_000).describe('Joinproto relay: longest lifetime of one session.'),
  RELAY_OPENS_PER_TERMINAL_PER_MINUTE: z.coerce
    .number()
    .int()
    .min(1)
    .max(6000)
    .default(60)
    .describe(
      "Joinproto relay: opens (91) of one terminal per minute, as many at once (token bucket). A terminal opens one session per transaction (to its processing centre or TMS); without this budget an open-close loop to an allowed host was bounded only by RELAY_MAX_CONNECTIONS_PER_TERMINAL at once. Past it the terminal's opens are refused (`denied`, `Address not allowed by till`; recorded one by one within RELAY_RECORDED_REFUSALS_PER_MINUTE, then summarised) and counted in `payorch_connector_relay_opens_over_budget_total` (docs/relay.md).",
    ),
  RELAY_RECORDED_REFUSALS_PER_MINUTE: z.coerce
    .number()
    .int()
    .min(1)
    .max(600)
    .default(20)
    .describe(
      "Joinproto relay: refused opens (`denied`, `connect_failed`) of one terminal recorded one by one (a RelaySession row, `relay.denied`) per minute, as many at once (token bucket). Past it the terminal's opens are refused at once without database work, DNS or connect, counted in `payorch_connector_relay_refusals_unrecorded_total` and recorded as one summarising `denied` row per terminal and minute (docs/relay.md).",
    ),
  TUNNEL_MAX_FRAME_BYTES: z.coerce
    .number()
    .int()
    .min(4096)
    .max(16 * 1024 * 1024)
    .default(64 * 1024 - 512)
    .describe(
      "Largest tunnel frame (header included) accepted from an agent, and sent to it (the smaller of this and the agent's value). A frame is one WebSocket message, so this is also the largest message accepted: a longer one is refused by its header (close 1009) before it is read. The default, 64 KiB less 512 bytes, keeps a frame and its WebSocket header within one 64 KiB socket read (docs/tunnel.md).",
    ),
  TUNNEL_AGENT_CONNECTS_PER_MINUTE: z.coerce
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(10)
    .describe(
      "WebSocket upgrades (tunnels and `payorch-agent doctor` probes) one agent credential may make per minute to all connector instances together (counted in Redis), as many at once; one more is answered `429` with `Retry-After` (the agent counts it as a failed dial and backs off). When Redis does not answer within 200 ms each instance counts alone (never more than this per instance). Each tunnel's set-up and close write the agent's and its terminals' presence and events: a till reconnecting in a loop made that work without bound.",
    ),
  TUNNEL_AGENT_REPORT_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(60_000)
    .default(1000)
    .describe(
      "An agent's link reports (`link-status`, `agent-status`) are passed on to presence at most once per this interval per tunnel, the latest per terminal: a terminal's recorded state (and its `terminal.online` / `terminal.offline` events) changes at most once per interval, however fast the agent reports. 0: every report at once.",
    ),
  TUNNEL_CONNECTION_FRAMES_PER_MINUTE: z.coerce
    .number()
    .int()
    .min(60)
    .max(10_000_000)
    .default(12_000)
    .describe(
      "Frames an agent may send on its tunnel's connection per minute, as many at once: tunnel PING, PONG and CONTROL messages, OPENs, and WebSocket pings and pongs (each answered or parsed, none flow-controlled; a healthy agent sends a few a minute, plus up to two link reports per command); a frame counts one per started 4 KiB. One more closes the tunnel (1002, PROTOCOL_ERROR).",
    ),
  TUNNEL_MAX_UNFLUSHED_BYTES: z.coerce
    .number()
    .int()
    .min(2 * 1024 * 1024)
    .max(1024 * 1024 * 1024)
    .default(8 * 1024 * 1024)
    .describe(
      "Bytes the connector may have sent on one tunnel and not yet flushed to its socket; beyond them, as the next frame arrives, the tunnel is cut (SEND_OVERFLOW): an agent that never reads would otherwise grow the connector's memory with every answer (PONG, OPEN_FAIL) it provokes. DATA stops at 1 MiB unflushed anyway. Raised to 1 MiB + TUNNEL_MAX_FRAME_BYTES when below it.",
    ),
});
export type ConnectorConfig = z.infer<typeof connectorConfigSchema>;

export const workerConfigSchema = z.object({
  ...common,
  ASSIST_ORDERSTATE_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(120_000)
    .default(15_000)
    .describe('Deadline of one Assist order-state request made by the wallet payment resolution job.'),
  CAMPAIGN_SWEEP_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(100)
    .default(60_000)
    .describe(
      "How often (and once at each start) the worker sweeps the open campaigns for jobs Redis lost (their run, their running wave, the steps of its unfinished targets) and adds them again under the same job ids, retries or adds again the steps of ended (completed, canceled) campaigns' unfinished (pending, retrying, running) targets, which end them (running ones with their operation, the others skipped, never sent), and removes the jobs ended campaigns left behind (failed ones, and the run waiting for them) (docs/campaigns.md).",
    ),
  CAMPAIGN_SWEEP_STEP_CHECKS_PER_PASS: z.coerce
    .number()
    .int()
    .min(1_000)
    .max(1_000_000)
    .default(10_000)
    .describe(
      "Step jobs (one per unfinished target of an open campaign's running wave, or of an ended campaign) the campaign sweep looks for per pass, shared by every such campaign and going on where the last pass stopped: a step lost or failed is found within ceil(those targets of all campaigns / this) passes. Each campaign's run and wave are looked for every pass; one found gone is rebuilt with all its wave's lost steps in that pass, whatever this says. Also the most failed campaign jobs a pass looks at (beside the step checks, on where the last pass stopped) to remove the jobs of ended campaigns (docs/campaigns.md).",
    ),
  PAYORCH_MASTER_KEY: masterKey().describe('Active key-encryption key (decrypts Assist merchant secrets for wallet payment resolution).'),
  PAYORCH_PREVIOUS_MASTER_KEYS: previousMasterKeys().describe('Retired keys still accepted for decryption.'),
  WALLET_NOT_FOUND_GRACE_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(600_000)
    .describe(
      "A payment Assist does not know (order state 10) is concluded never paid (REJECTED, ORDER_NOT_FOUND) only this long after it was created (a PENDING one too: its gateway may be about to send it), and a capture/cancel only this long after it was sent, unless Assist already named it; keep it well above the gateway's ASSIST_TIMEOUT_MS.",
    ),
  ...walletResolveJob,
  WALLET_SWEEP_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(100)
    .default(60_000)
    .describe(
      'How often the worker sweeps for open wallet payments (PENDING, PROCESSING, REQUIRES_ACTION, UNKNOWN, or with a PENDING / UNKNOWN capture, cancel or refund) and adds again the resolution jobs Redis lost: at most 500 a pass, the never-swept first, then the least recently swept, so each open payment gets its turn within ceil(open / 500) passes.',
    ),
  WALLET_SWEEP_OLDER_THAN_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(120_000)
    .describe('The sweep picks up open payments and operations unchanged for this long (keep it above ASSIST_TIMEOUT_MS).'),
  SETTLEMENT_CONCURRENCY: z.coerce
    .number()
    .int()
    .min(1)
    .max(1024)
    .default(32)
    .describe('Settlement jobs run in parallel by one worker (each mostly waits for its terminal).'),
  SETTLEMENT_GIVE_UP_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(4 * 60 * 60 * 1000)
    .describe('A settlement whose terminal stays offline or busy this long after its first attempt is FAILED (`settlement.failed`).'),
  SETTLEMENT_RETRY_BASE_MS: z.coerce
    .number()
    .int()
    .min(10)
    .default(30_000)
    .describe('First retry delay of a settlement whose terminal is offline or busy; doubles per retry.'),
  SETTLEMENT_RETRY_MAX_MS: z.coerce
    .number()
    .int()
    .min(10)
    .default(10 * 60 * 1000)
    .describe('Longest delay between two retries of a settlement.'),
  SETTLEMENT_SYNC_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(100)
    .default(60_000)
    .describe('How often schedules in PostgreSQL are re-synced into BullMQ job schedulers (changes also sync at once on a gateway notification).'),
  SETTLEMENT_SWEEP_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(100)
    .default(5 * 60_000)
    .describe(
      'How often the worker sweeps for PENDING/RUNNING settlements whose `settlement.run` job is gone (Redis flushed, job failed or stalled) and queues it again.',
    ),
  SETTLEMENT_SWEEP_AFTER_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(15 * 60_000)
    .describe(
      "The settlement sweep looks only at PENDING/RUNNING settlements unchanged this long. One whose job still exists is left to that job (same job id), so this only bounds the sweep's work: keep it above SETTLEMENT_RETRY_MAX_MS, so a settlement waiting out its backoff is not even looked at.",
    ),
  SETTLEMENT_CATCH_UP_AFTER_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(10 * 60_000)
    .describe(
      "Grace after a schedule's fire time: then the settlement sweep starts the scheduled run of every terminal it covers that has no settlement for that business day and no job (lost before its first attempt: Redis flushed, the worker down over the fire), under the fire's own job id.",
    ),
  SCHEDULE_RECONCILE_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(100)
    .default(60_000)
    .describe(
      'How often the worker checks that its BullMQ job schedulers (sweeps, settlement schedules from PostgreSQL) exist in Redis and re-creates missing ones; also runs at start-up and after every Redis reconnect.',
    ),
  SETTLEMENT_TENANT_CONCURRENCY: z.coerce
    .number()
    .int()
    .min(1)
    .max(1024)
    .default(8)
    .describe('Settlements of one tenant running at once across all workers (fairness between tenants).'),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(8).describe('Jobs processed in parallel per worker.'),
  WORKER_DATABASE_POOL_SIZE: z.coerce
    .number()
    .int()
    .min(2)
    .max(200)
    .default(16)
    .describe(
      "PostgreSQL connections of one worker: one pool, shared by all its queues and by Prisma and the bare driver alike (Database.connect), so at most this many. A settlement holds one only inside its two short transactions, not while its terminal closes the day, so 16 keeps SETTLEMENT_CONCURRENCY 32 from queueing on the pool (a fixed 4 did); raise it with the concurrencies, within PostgreSQL's `max_connections` (or PgBouncer's) for this × workers (docs/scaling.md).",
    ),
  RECOVERY_BACKOFF_BASE_MS: z.coerce
    .number()
    .int()
    .min(10)
    .default(30_000)
    .describe('Delay before the first recovery attempt of an UNKNOWN operation; doubles per inconclusive attempt.'),
  RECOVERY_BACKOFF_MAX_MS: z.coerce
    .number()
    .int()
    .min(10)
    .default(30 * 60_000)
    .describe('Longest delay between two recovery attempts of an UNKNOWN operation.'),
  RECOVERY_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(100)
    .default(30_000)
    .describe('How often the recovery sweep runs (stuck SENT/IN_PROGRESS → UNKNOWN; UNKNOWN → `operation.recover`).'),
  RECOVERY_MAX_ATTEMPTS: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(20)
    .describe('Inconclusive recovery attempts after which an UNKNOWN operation is left for a human (POST /v1/operations/{id}/resolve).'),
  RECOVERY_PENDING_AFTER_MS: recoveryPendingAfterMs().describe(
    "An operation PENDING unchanged this long was never claimed by an executor (its gateway or connector died) and is failed as never sent; keep it above 2 × the connector's PENDING_HOLD_INTERVAL_MS.",
  ),
  RECOVERY_STUCK_AFTER_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(10 * 60_000)
    .describe('An operation SENT/IN_PROGRESS unchanged this long is moved to UNKNOWN and recovered; keep it above every command timeout (execute: 300 s).'),
  WEBHOOK_ALLOW_HTTP: bool(false).describe('Deliver to plain `http://` webhook URLs (development only; the egress policy still applies).'),
  WEBHOOK_ATTEMPTS: z.coerce
    .number()
    .int()
    .min(1)
    .max(100)
    .default(15)
    .describe('Delivery attempts of one webhook before it is FAILED (docs/webhooks.md has the schedule).'),
  WEBHOOK_BACKOFF_BASE_MS: z.coerce
    .number()
    .int()
    .min(10)
    .default(30_000)
    .describe('Delay after the first failed webhook attempt; doubles per attempt up to WEBHOOK_BACKOFF_MAX_MS.'),
  WEBHOOK_BACKOFF_MAX_MS: z.coerce
    .number()
    .int()
    .min(10)
    .default(12 * 60 * 60_000)
    .describe('Longest delay between two webhook attempts.'),
  WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(1024).default(16).describe('Webhook jobs (fan-out and deliveries) run in parallel by one worker.'),
  WEBHOOK_DISABLE_AFTER_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(24 * 60 * 60_000)
    .describe(
      'A webhook endpoint is disabled (`enabled: false`, audit action `webhook.auto_disable`) when one of its deliveries fails for good, that delivery is at least this old, and since it was created nothing was delivered to the endpoint and the endpoint was not changed: with the default schedule, about 2.2 days of failures. 0 never disables.',
    ),
  WEBHOOK_ENDPOINT_CONCURRENCY: z.coerce
    .number()
    .int()
    .min(1)
    .max(1024)
    .default(4)
    .describe(
      'Delivery attempts to one webhook endpoint at once, across every worker: a receiver that answers slowly or never holds at most this many worker slots (others wait their turn, not counted as attempts; docs/webhooks.md).',
    ),
  WEBHOOK_REQUEUE_AFTER_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(10 * 60_000)
    .describe(
      'A webhook delivery still pending or retrying this long after it was due (nextAttemptAt) whose job is gone (Redis lost it) or failed is queued again by the webhook sweep; keep it above the longest slot deferral (7.5 min) so that the sweep rarely looks at a delivery whose job is only waiting.',
    ),
  WEBHOOK_SWEEP_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(100)
    .default(60_000)
    .describe(
      'How often the worker sweeps for domain events without webhook deliveries (covers pub/sub messages missed while it was down) and for overdue deliveries without a job (WEBHOOK_REQUEUE_AFTER_MS).',
    ),
  WEBHOOK_SWEEP_LOOKBACK_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(24 * 60 * 60_000)
    .describe('How far back (by createdAt) the first webhook sweep looks, before it has a position; later sweeps go by commit order (DomainEvent.seq).'),
  WEBHOOK_TENANT_CONCURRENCY: z.coerce
    .number()
    .int()
    .min(1)
    .max(1024)
    .default(8)
    .describe(
      "Delivery attempts to all webhook endpoints of one tenant at once, across every worker: one tenant's slow receivers hold at most this many worker slots; keep it well below the fleet's WEBHOOK_CONCURRENCY in total.",
    ),
  WEBHOOK_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(100)
    .max(120_000)
    .default(10_000)
    .describe('Deadline of one webhook POST, from the DNS lookup to the status line and headers of the answer (its body is not read).'),
  WORKER_HEALTH_HOST: z.string().default('127.0.0.1').describe('Interface of the worker health endpoint.'),
  WORKER_HEALTH_PORT: port(3002).describe('Port of the worker `/health` and `/metrics`.'),
});
export type WorkerConfig = z.infer<typeof workerConfigSchema>;

/**
 * The operator CLI (`npm run admin`, apps/api-gateway/src/admin/cli.ts; in a deployment `node
 * dist/apps/api-gateway/admin.js`): the owner connection, plus what `secrets rewrap` and live event
 * publishing need. Not a service: not in the README table (deploy/README.md lists it).
 */
export const adminConfigSchema = z.object({
  DATABASE_URL: z
    .string({ error: 'required: the owner connection (postgresql://…); with `npm start`, use the value it prints' })
    .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgresql:// URL')
    .describe('PostgreSQL URL of the owner role (migrations, tenants, API keys; bypasses row-level security).'),
  PAYORCH_MASTER_KEY: masterKey().optional().describe('Active key-encryption key; needed by `secrets rewrap` only.'),
  PAYORCH_PREVIOUS_MASTER_KEYS: previousMasterKeys().describe('Retired keys still accepted for decryption (`secrets rewrap`).'),
  REDIS_KEY_PREFIX: common.REDIS_KEY_PREFIX,
  REDIS_URL: z
    .string()
    .refine(isRedisUrl, 'must be a redis:// or rediss:// URL, or redis-cluster://host:port[,host:port…] for a Redis Cluster')
    .optional()
    .describe(
      "With it, committed events (tenant.disabled…) reach the connectors at once; without, on their next periodic re-check. Required by the `jobs` commands (the workers' Redis, with their REDIS_KEY_PREFIX).",
    ),
});
export type AdminConfig = z.infer<typeof adminConfigSchema>;

export const schemasByApp = {
  'api-gateway': gatewayConfigSchema,
  'device-connector': connectorConfigSchema,
  'settlement-worker': workerConfigSchema,
} as const;
