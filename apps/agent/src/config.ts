import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

/** Where the agent keeps its credential and last known state (one directory, 0700). */
export function defaultStateDir(): string {
  return process.env.PAYORCH_AGENT_STATE_DIR ?? path.join(homedir(), '.payorch-agent');
}

export interface StoredCredential {
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

  readCredential(): StoredCredential | null {
    return readJson<StoredCredential>(this.credentialFile);
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
}

/** `https://host` / `wss://host` / `http://…` → the connector's base HTTP URL (no trailing slash). */
export function connectorHttpUrl(connector: string): string {
  const url = new URL(connector);
  if (url.protocol === 'wss:') url.protocol = 'https:';
  if (url.protocol === 'ws:') url.protocol = 'http:';
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`--connector must be an http(s):// or ws(s):// URL, got ${connector}`);
  return url.toString().replace(/\/+$/, '');
}

export function connectorWsUrl(connector: string): string {
  return `${connectorHttpUrl(connector).replace(/^http/, 'ws')}/agent`;
}
