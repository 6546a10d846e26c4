import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

import { z } from 'zod';

import type { TerminalEntry } from '@payorch/tunnel';

// ---------------------------------------------------------------------------------------------
// Connector URLs: one form only
// ---------------------------------------------------------------------------------------------

/** The one accepted form of a connector URL: the connector's agent WebSocket endpoint. */
export const CONNECTOR_URL_FORM = 'wss://<host>[:<port>]/agent (ws://<host>:<port>/agent for local development only)';
export const CONNECTOR_URL_EXAMPLE = 'wss://connector.example.com/agent';

/**
 * Checks a connector URL given by an operator (flag, environment, config file) and returns it
 * normalised. The URL is the WebSocket endpoint itself, `wss://host[:port]/agent` (a reverse proxy
 * may put a prefix before `/agent`); the enrollment endpoint is derived from it (`…/agent/enroll`
 * over https). Anything else is refused with a message that shows the accepted form, so an
 * `https://` address or a bare `host:port` is never guessed at.
 */
export function parseConnectorUrl(input: string): string {
  const value = input.trim();
  const shown = JSON.stringify(input);
  const form = `write it as ${CONNECTOR_URL_FORM}, e.g. ${CONNECTOR_URL_EXAMPLE}`;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) throw new Error(`connector URL ${shown} has no scheme; ${form}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`connector URL ${shown} is not a valid URL; ${form}`);
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    const suggestion = `${url.protocol === 'https:' ? 'wss' : 'ws'}://${url.host}${url.pathname.replace(/\/+$/, '')}${/\/agent$/.test(url.pathname.replace(/\/+$/, '')) ? '' : '/agent'}`;
    throw new Error(`connector URL ${shown} uses ${url.protocol}//, which is not accepted: the connector URL is its WebSocket endpoint; use ${suggestion}`);
  }
  if (url.protocol !== 'wss:' && url.protocol !== 'ws:') throw new Error(`connector URL ${shown} uses ${url.protocol}//, which is not accepted; ${form}`);
  if (url.username || url.password) throw new Error(`connector URL ${shown} must not carry a user name or password; ${form}`);
  if (url.search || url.hash) throw new Error(`connector URL ${shown} must not have a query or fragment; ${form}`);
  if (!url.hostname) throw new Error(`connector URL ${shown} has no host; ${form}`);
  if (!/(^|\/)agent$/.test(url.pathname)) {
    const fixed = `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}/agent`;
    throw new Error(`connector URL ${shown} must end with the agent endpoint path /agent; use ${fixed}`);
  }
  return url.toString();
}

/**
 * A connector URL kept by an earlier agent version (credential.json of 0.1.0 stored what was typed,
 * `https://host` or `http://host:port`): turned into the endpoint form those versions dialled
 * (`…/agent` appended). New input never takes this path; it goes through parseConnectorUrl.
 */
export function storedConnectorUrl(stored: string): string {
  try {
    return parseConnectorUrl(stored);
  } catch {
    const url = new URL(stored);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`stored connector URL ${JSON.stringify(stored)} is not usable; enroll again`);
    return `${url.protocol === 'https:' ? 'wss' : 'ws'}://${url.host}${url.pathname.replace(/\/+$/, '')}/agent`;
  }
}

/** `wss://host/agent` → `https://host/agent/enroll`: where the one-time enrollment token is exchanged. */
export function enrollmentUrl(connector: string): string {
  const url = new URL(parseConnectorUrl(connector));
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  return `${url.toString()}/enroll`;
}

// ---------------------------------------------------------------------------------------------
// Settings: flags > environment > config file > defaults
// ---------------------------------------------------------------------------------------------

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface AgentSettings {
  /** Connector URLs tried in turn; empty = the one the agent enrolled with. */
  connectors: string[];
  stateDir: string;
  logLevel: LogLevel;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  /** The config file that was read, if any. */
  configFile: string | null;
}

/** What each source may set; keys are the config-file keys. */
type SettingKey = 'connectors' | 'stateDir' | 'logLevel' | 'reconnectBaseMs' | 'reconnectMaxMs';

export const ENV = {
  config: 'PAYORCH_AGENT_CONFIG',
  connectors: 'PAYORCH_AGENT_CONNECTORS',
  stateDir: 'PAYORCH_AGENT_STATE_DIR',
  logLevel: 'PAYORCH_AGENT_LOG_LEVEL',
  reconnectBaseMs: 'PAYORCH_AGENT_RECONNECT_BASE_MS',
  reconnectMaxMs: 'PAYORCH_AGENT_RECONNECT_MAX_MS',
} as const;

const FLAGS: Record<SettingKey, string> = {
  connectors: '--connector',
  stateDir: '--state-dir',
  logLevel: '--log-level',
  reconnectBaseMs: '--reconnect-base-ms',
  reconnectMaxMs: '--reconnect-max-ms',
};

const wholeMs = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const n = typeof value === 'number' ? value : /^\s*[0-9]+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > 3_600_000) {
    ctx.addIssue({ code: 'custom', message: `expected whole milliseconds between 1 and 3600000, got ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return n;
});

const connectorUrl = z.string().transform((value, ctx) => {
  try {
    return parseConnectorUrl(value);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

/** One schema for every source (file, environment, flags); each source sets any subset. */
export const agentSettingsSchema = z.strictObject({
  connectors: z.array(connectorUrl).min(1, 'list at least one connector URL').max(16, 'at most 16 connector URLs').optional(),
  stateDir: z.string().trim().min(1, 'must not be empty').optional(),
  logLevel: z.enum(LOG_LEVELS, { error: (issue) => `expected one of ${LOG_LEVELS.join('|')}, got ${JSON.stringify(issue.input)}` }).optional(),
  reconnectBaseMs: wholeMs.optional(),
  reconnectMaxMs: wholeMs.optional(),
});
type PartialSettings = z.infer<typeof agentSettingsSchema>;

/** The configuration could not be used; `problems` lists every issue, each naming where it came from. */
export class AgentConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'AgentConfigError';
  }
}

export interface FlagValues {
  config?: string;
  connector?: string[];
  stateDir?: string;
  logLevel?: string;
  reconnectBaseMs?: string;
  reconnectMaxMs?: string;
}

export interface ResolveInput {
  flags: FlagValues;
  env: NodeJS.ProcessEnv;
  readFile?: (file: string) => string;
}

function validate(raw: Record<string, unknown>, label: (key: string, index?: number) => string, problems: string[]): PartialSettings {
  const parsed = agentSettingsSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      problems.push(
        `${label('')}unknown setting${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')} (known: ${Object.keys(FLAGS).join(', ')})`,
      );
      continue;
    }
    const [key, index] = issue.path as [string, number | undefined];
    problems.push(`${label(key, index)}${issue.message}`);
  }
  return {};
}

function envList(value: string): string[] {
  return value.split(/[\s,]+/).filter(Boolean);
}

/**
 * Reads the settings from the three sources (flags > environment > config file > defaults), checks
 * each with agentSettingsSchema, and throws one AgentConfigError listing every problem.
 */
export function resolveSettings({ flags, env, readFile = (f) => readFileSync(f, 'utf8') }: ResolveInput): AgentSettings {
  const problems: string[] = [];
  const nonEmpty = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : env[name]);

  const configFile = flags.config ?? nonEmpty(ENV.config) ?? null;
  let fromFile: PartialSettings = {};
  if (configFile) {
    const where = `${configFile}: `;
    let text: string | undefined;
    try {
      text = readFile(configFile);
    } catch (error) {
      problems.push(`${where}cannot read the config file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    if (text !== undefined) {
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch (error) {
        problems.push(`${where}not valid JSON (${(error as Error).message})`);
      }
      if (raw !== undefined) {
        if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) problems.push(`${where}expected a JSON object of settings`);
        else fromFile = validate(raw as Record<string, unknown>, (key, i) => `${where}${key}${i === undefined ? '' : `[${i}]`}${key ? ': ' : ''}`, problems);
      }
    }
  }

  const envRaw: Record<string, unknown> = {};
  const connectorsEnv = nonEmpty(ENV.connectors);
  if (connectorsEnv !== undefined) envRaw.connectors = envList(connectorsEnv);
  for (const key of ['stateDir', 'logLevel', 'reconnectBaseMs', 'reconnectMaxMs'] as const) {
    const value = nonEmpty(ENV[key]);
    if (value !== undefined) envRaw[key] = value;
  }
  const fromEnv = validate(envRaw, (key, i) => `${ENV[key as SettingKey]}${i === undefined ? '' : ` (item ${i + 1})`}: `, problems);

  const flagRaw: Record<string, unknown> = {};
  if (flags.connector?.length) flagRaw.connectors = flags.connector;
  if (flags.stateDir !== undefined) flagRaw.stateDir = flags.stateDir;
  if (flags.logLevel !== undefined) flagRaw.logLevel = flags.logLevel;
  if (flags.reconnectBaseMs !== undefined) flagRaw.reconnectBaseMs = flags.reconnectBaseMs;
  if (flags.reconnectMaxMs !== undefined) flagRaw.reconnectMaxMs = flags.reconnectMaxMs;
  const fromFlags = validate(flagRaw, (key, i) => `${FLAGS[key as SettingKey]}${i === undefined ? '' : ` (#${i + 1})`}: `, problems);

  const pick = <K extends SettingKey>(key: K): { value: PartialSettings[K]; from: string } | undefined => {
    if (fromFlags[key] !== undefined) return { value: fromFlags[key], from: FLAGS[key] };
    if (fromEnv[key] !== undefined) return { value: fromEnv[key], from: ENV[key] };
    if (fromFile[key] !== undefined) return { value: fromFile[key], from: `${configFile}: ${key}` };
    return undefined;
  };
  const base = pick('reconnectBaseMs');
  const max = pick('reconnectMaxMs');
  const settings: AgentSettings = {
    connectors: pick('connectors')?.value ?? [],
    stateDir: pick('stateDir')?.value ?? path.join(homedir(), '.payorch-agent'),
    logLevel: pick('logLevel')?.value ?? 'info',
    reconnectBaseMs: base?.value ?? 500,
    reconnectMaxMs: max?.value ?? 30_000,
    configFile,
  };
  if (settings.reconnectBaseMs > settings.reconnectMaxMs) {
    problems.push(
      `reconnect base ${settings.reconnectBaseMs} ms (${base?.from ?? 'default'}) must not exceed reconnect max ${settings.reconnectMaxMs} ms (${max?.from ?? 'default'})`,
    );
  }
  if (problems.length) throw new AgentConfigError(problems);
  return settings;
}

// ---------------------------------------------------------------------------------------------
// State directory: credential, last tunnel state, last terminal list
// ---------------------------------------------------------------------------------------------

export interface StoredCredential {
  /** The connector URL the agent enrolled through (endpoint form). */
  connector: string;
  agentId: string;
  tenantId: string;
  credential: string;
  enrolledAt: string;
}

export interface AgentState {
  connector: string;
  connected: boolean;
  since: string;
  lastError: string | null;
  pid: number;
}

/** The last `terminal-list` the connector pushed (what `doctor` checks when no connector answers). */
export interface CachedTerminals {
  receivedAt: string;
  connector: string;
  terminals: TerminalEntry[];
}

function writePrivate(file: string, data: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

function readJson<T>(file: string): T | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`${file} is unreadable or corrupt: ${(error as Error).message}`, { cause: error });
  }
}

export class StateStore {
  constructor(readonly dir: string) {}

  get credentialFile(): string {
    return path.join(this.dir, 'credential.json');
  }

  get stateFile(): string {
    return path.join(this.dir, 'state.json');
  }

  get terminalsFile(): string {
    return path.join(this.dir, 'terminals.json');
  }

  /** The credential, its connector URL in endpoint form (older files kept `https://host`). */
  readCredential(): StoredCredential | null {
    const stored = readJson<StoredCredential>(this.credentialFile);
    return stored && { ...stored, connector: storedConnectorUrl(stored.connector) };
  }

  /** Written 0600 atomically: the credential is the agent's only secret. */
  writeCredential(credential: StoredCredential): void {
    writePrivate(this.credentialFile, credential);
  }

  readState(): AgentState | null {
    return readJson<AgentState>(this.stateFile);
  }

  writeState(state: AgentState): void {
    writePrivate(this.stateFile, state);
  }

  readTerminals(): CachedTerminals | null {
    return readJson<CachedTerminals>(this.terminalsFile);
  }

  writeTerminals(terminals: CachedTerminals): void {
    writePrivate(this.terminalsFile, terminals);
  }
}
