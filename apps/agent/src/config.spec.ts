import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';

import { AgentConfigError, enrollmentUrl, parseConnectorUrl, resolveSettings, StateStore, storedConnectorUrl } from './config';

describe(parseConnectorUrl.name, () => {
  it('accepts the endpoint form wss://host[:port]/agent (and ws:// for development), normalised', () => {
    expect(parseConnectorUrl('wss://connector.example.com/agent')).toBe('wss://connector.example.com/agent');
    expect(parseConnectorUrl(' WSS://Connector.Example.com:443/agent ')).toBe('wss://connector.example.com/agent');
    expect(parseConnectorUrl('wss://c.example:8443/agent')).toBe('wss://c.example:8443/agent');
    expect(parseConnectorUrl('ws://127.0.0.1:3001/agent')).toBe('ws://127.0.0.1:3001/agent');
    expect(parseConnectorUrl('wss://[::1]:3001/agent')).toBe('wss://[::1]:3001/agent');
    // Behind a reverse proxy with a path prefix.
    expect(parseConnectorUrl('wss://pay.example/connector/agent')).toBe('wss://pay.example/connector/agent');
  });

  it('refuses http(s):// with the wss:// URL to use instead', () => {
    expect(() => parseConnectorUrl('https://connector.example.com')).toThrow(
      'connector URL "https://connector.example.com" uses https://, which is not accepted: the connector URL is its WebSocket endpoint; use wss://connector.example.com/agent',
    );
    expect(() => parseConnectorUrl('http://127.0.0.1:3001/agent')).toThrow(/uses http:\/\/.*use ws:\/\/127\.0\.0\.1:3001\/agent$/);
  });

  it('refuses a bare host:port, a missing /agent path and other ambiguities, showing the accepted form', () => {
    const form = /wss:\/\/<host>\[:<port>\]\/agent .*e\.g\. wss:\/\/connector\.example\.com\/agent/;
    expect(() => parseConnectorUrl('connector.example.com:443')).toThrow(form);
    expect(() => parseConnectorUrl('127.0.0.1:3001')).toThrow(/has no scheme/);
    expect(() => parseConnectorUrl('wss://c.example')).toThrow(
      'connector URL "wss://c.example" must end with the agent endpoint path /agent; use wss://c.example/agent',
    );
    expect(() => parseConnectorUrl('wss://c.example/agent/')).toThrow(/must end with the agent endpoint path/);
    expect(() => parseConnectorUrl('wss://u:p@c.example/agent')).toThrow(/user name or password/);
    expect(() => parseConnectorUrl('wss://c.example/agent?x=1')).toThrow(/query or fragment/);
    expect(() => parseConnectorUrl('ftp://c.example/agent')).toThrow(form);
  });

  it('derives the enrollment endpoint from the connector URL', () => {
    expect(enrollmentUrl('wss://c.example/agent')).toBe('https://c.example/agent/enroll');
    expect(enrollmentUrl('ws://127.0.0.1:3001/agent')).toBe('http://127.0.0.1:3001/agent/enroll');
  });

  it('reads credential files of earlier versions, which kept https://host, as the endpoint they dialled', () => {
    expect(storedConnectorUrl('https://c.example')).toBe('wss://c.example/agent');
    expect(storedConnectorUrl('http://127.0.0.1:3001/')).toBe('ws://127.0.0.1:3001/agent');
    expect(storedConnectorUrl('wss://c.example/agent')).toBe('wss://c.example/agent');
  });
});

describe(resolveSettings.name, () => {
  const file = (content: object | string) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'agent-config-'));
    const name = path.join(dir, 'agent.json');
    writeFileSync(name, typeof content === 'string' ? content : JSON.stringify(content));
    return name;
  };

  it('uses the defaults without any source', () => {
    expect(resolveSettings({ flags: {}, env: {} })).toEqual({
      connectors: [],
      stateDir: path.join(homedir(), '.payorch-agent'),
      logLevel: 'info',
      reconnectBaseMs: 500,
      reconnectMaxMs: 30_000,
      configFile: null,
    });
  });

  it('takes flags over the environment over the config file', () => {
    const config = file({
      connectors: ['wss://file-1.example/agent', 'wss://file-2.example/agent'],
      stateDir: '/var/lib/from-file',
      logLevel: 'warn',
      reconnectBaseMs: 100,
      reconnectMaxMs: 1000,
    });
    const env = { PAYORCH_AGENT_CONFIG: config, PAYORCH_AGENT_STATE_DIR: '/from-env', PAYORCH_AGENT_RECONNECT_MAX_MS: '2000', PAYORCH_AGENT_LOG_LEVEL: '' };
    expect(resolveSettings({ flags: { reconnectMaxMs: '3000' }, env })).toEqual({
      connectors: ['wss://file-1.example/agent', 'wss://file-2.example/agent'],
      stateDir: '/from-env',
      logLevel: 'warn',
      reconnectBaseMs: 100,
      reconnectMaxMs: 3000,
      configFile: config,
    });
    // Connectors: a list from one source replaces the lower source's list.
    expect(resolveSettings({ flags: {}, env: { ...env, PAYORCH_AGENT_CONNECTORS: 'wss://e1.example/agent, wss://e2.example/agent' } }).connectors).toEqual([
      'wss://e1.example/agent',
      'wss://e2.example/agent',
    ]);
    expect(
      resolveSettings({ flags: { config, connector: ['ws://127.0.0.1:9/agent'] }, env: { PAYORCH_AGENT_CONNECTORS: 'wss://e1.example/agent' } }).connectors,
    ).toEqual(['ws://127.0.0.1:9/agent']);
  });

  it('lists every problem of every source in one error, each naming where it came from', () => {
    const config = file({ connectors: ['https://c.example', 'wss://ok.example/agent'], logLevel: 'loud', reconnectBaseMs: 0, extra: true });
    let error: unknown;
    try {
      resolveSettings({
        flags: { config, connector: ['c.example:443'], reconnectMaxMs: 'soon' },
        env: { PAYORCH_AGENT_RECONNECT_BASE_MS: '1.5', PAYORCH_AGENT_CONNECTORS: 'wss://a.example/agent,http://b.example' },
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AgentConfigError);
    expect((error as AgentConfigError).problems).toEqual([
      `${config}: connectors[0]: connector URL "https://c.example" uses https://, which is not accepted: the connector URL is its WebSocket endpoint; use wss://c.example/agent`,
      `${config}: logLevel: expected one of fatal|error|warn|info|debug|trace|silent, got "loud"`,
      `${config}: reconnectBaseMs: expected whole milliseconds between 1 and 3600000, got 0`,
      `${config}: unknown setting "extra" (known: connectors, stateDir, logLevel, reconnectBaseMs, reconnectMaxMs)`,
      'PAYORCH_AGENT_CONNECTORS (item 2): connector URL "http://b.example" uses http://, which is not accepted: the connector URL is its WebSocket endpoint; use ws://b.example/agent',
      'PAYORCH_AGENT_RECONNECT_BASE_MS: expected whole milliseconds between 1 and 3600000, got "1.5"',
      '--connector (#1): connector URL "c.example:443" has no scheme; write it as wss://<host>[:<port>]/agent (ws://<host>:<port>/agent for local development only), e.g. wss://connector.example.com/agent',
      '--reconnect-max-ms: expected whole milliseconds between 1 and 3600000, got "soon"',
    ]);
    expect((error as Error).message).toMatch(/^invalid configuration:\n {2}- /);
  });

  it('reports an unreadable or malformed config file, and a base delay above the max', () => {
    expect(() => resolveSettings({ flags: { config: '/nonexistent/agent.json' }, env: {} })).toThrow(
      'invalid configuration:\n  - /nonexistent/agent.json: cannot read the config file (ENOENT)',
    );
    const broken = file('{"connectors": [');
    expect(() => resolveSettings({ flags: { config: broken }, env: {} })).toThrow(`${broken}: not valid JSON`);
    expect(() => resolveSettings({ flags: { config: file(['x']) }, env: {} })).toThrow('expected a JSON object of settings');
    expect(() => resolveSettings({ flags: { reconnectBaseMs: '5000' }, env: { PAYORCH_AGENT_RECONNECT_MAX_MS: '1000' } })).toThrow(
      'reconnect base 5000 ms (--reconnect-base-ms) must not exceed reconnect max 1000 ms (PAYORCH_AGENT_RECONNECT_MAX_MS)',
    );
  });
});

describe(StateStore.name, () => {
  it('keeps the credential in a 0600 file and the last terminal list beside it', () => {
    const store = new StateStore(mkdtempSync(path.join(tmpdir(), 'agent-')));
    store.writeCredential({ connector: 'https://c', agentId: 'a', tenantId: 't', credential: 'pac_x', enrolledAt: 'now' });
    expect(statSync(store.credentialFile).mode & 0o777).toBe(0o600);
    expect(store.readCredential()).toMatchObject({ credential: 'pac_x', connector: 'wss://c/agent' });
    expect(store.readTerminals()).toBeNull();
    const terminals = {
      receivedAt: 'now',
      connector: 'wss://c/agent',
      terminals: [{ terminalId: 't1', protocol: 'jpay' as const, link: { kind: 'tcp-listen' as const, port: 7000 } }],
    };
    store.writeTerminals(terminals);
    expect(store.readTerminals()).toEqual(terminals);
  });
});
