import { spawn } from 'node:child_process';
import path from 'node:path';

import type { TerminalCommand, TerminalCommandReply } from '@payorch/domain';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { runPos } from '../../examples/node-pos/pos';
import { GatewaySession, idem } from './support/gateway-session';
import { InProcessDispatcher } from './support/in-process-dispatcher';

const ROOT = path.resolve(__dirname, '../..');

/** Every terminal the examples create is routed to the one simulated Joinproto terminal (no agent, no connector). */
class SimulatedFleet extends InProcessDispatcher {
  port = 0;
  override dispatch(command: TerminalCommand): Promise<TerminalCommandReply> {
    this.route(command.terminalId, { port: this.port, options: { commandTimeoutMs: 2000 } });
    return super.dispatch(command);
  }
}

function run(command: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('examples/ against a started gateway and a simulated terminal', () => {
  const session = new GatewaySession();
  let fleet: SimulatedFleet;
  let joinproto: JoinprotoTerminalSimulator;
  let baseUrl: string;
  let apiKey: string;

  beforeAll(async () => {
    session.dispatcherFactory = (appUrl, publish) => (fleet = new SimulatedFleet(appUrl, publish));
    await session.start();
    apiKey = (await session.tenant()).apiKey;
    baseUrl = (await session.app.getUrl()).replace('[::1]', '127.0.0.1');
    joinproto = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30 });
    fleet.port = (await joinproto.listen(0)).port;
  });
  afterAll(async () => {
    await fleet.close();
    await joinproto.close();
    await session.stop();
  });

  it('curl-walkthrough: store → agent → terminal → approved purchase → approved refund → receipt', async () => {
    const res = await run('bash', ['examples/curl-walkthrough/walkthrough.sh'], {
      PAYORCH_URL: baseUrl,
      PAYORCH_API_KEY: apiKey,
      TERMINAL_HOST: '127.0.0.1',
      TERMINAL_PORT: String(fleet.port),
    });
    expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
    expect(res.stdout).toMatch(/agent [0-9a-f-]{36} \(pending_enrollment\)/);
    expect(res.stdout).toMatch(/payorch-agent enroll --connector <connector URL> --token \S+/);
    expect(res.stdout).toMatch(/purchase [0-9a-f-]{36}: approved/);
    expect(res.stdout).toMatch(/refund [0-9a-f-]{36}: approved/);
    const purchaseId = /purchase ([0-9a-f-]{36}): approved/.exec(res.stdout)![1]!;
    const receipt = await session
      .http()
      .get(`/v1/operations/${purchaseId}/receipt`)
      .set({ Authorization: `Bearer ${apiKey}` });
    expect(res.stdout.trimEnd().endsWith(receipt.body.text.trimEnd())).toBe(true);
  });

  it('curl-walkthrough: an error answer stops the script with the error envelope', async () => {
    const res = await run('bash', ['examples/curl-walkthrough/walkthrough.sh'], { PAYORCH_URL: baseUrl, PAYORCH_API_KEY: 'pok_wrong' });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('POST /v1/stores → 401 {"error":{"code":"UNAUTHENTICATED"');
  });

  it('node-pos: an approved purchase with its receipt and refund through @payorch/client', async () => {
    const auth = { Authorization: `Bearer ${apiKey}` };
    const store = await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'POS', timeZone: 'UTC' });
    const terminal = await session
      .http()
      .post('/v1/terminals')
      .set(auth)
      .set('Idempotency-Key', idem())
      .send({ name: 'Till', storeId: store.body.id, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port: fleet.port } });
    const lines: string[] = [];
    const result = await runPos({ baseUrl, apiKey, terminalId: terminal.body.id, amount: 2500, refund: true, log: (l) => lines.push(l) });
    expect(result.purchase).toMatchObject({ state: 'approved', amount: 2500, type: 'purchase' });
    expect(result.receipt?.text).toEqual(expect.any(String));
    expect(result.refund).toMatchObject({ state: 'approved', type: 'refund', originalOperationId: result.purchase.id });
    expect(lines[0]).toBe('terminal Till (joinproto, unknown)');
    expect(lines).toContain(`refund ${result.refund!.id}: approved`);
  });
});
