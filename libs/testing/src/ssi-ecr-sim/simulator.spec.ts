import { connect } from 'node:net';

import { FrameDecoder, SsiEcrClient, decodeMessage, decodeResponse, tcpTransportFactory, type SsiResponse } from '@payorch/ssi-ecr';

import { waitFor } from '../wait';
import { SsiEcrSimulator } from './simulator';

/** Independent frame builder (spec 1.3), not the library encoder. */
function frame(json: string, overrides: { protocolId?: number; lrc?: number } = {}): Buffer {
  const data = Buffer.from(json, 'utf8');
  const lrc = overrides.lrc ?? data.reduce((a, b) => a ^ b, 0);
  return Buffer.concat([Buffer.from([0x02, overrides.protocolId ?? 0x66, 0x01, data.length >> 8, data.length & 0xff]), data, Buffer.from([lrc])]);
}

let sim: SsiEcrSimulator;
afterEach(async () => sim?.stop());

async function start(options: ConstructorParameters<typeof SsiEcrSimulator>[0] = {}): Promise<number> {
  sim = new SsiEcrSimulator(options);
  return (await sim.start()).port;
}

/** Sends raw bytes on a fresh connection and resolves with the first response frame. */
function exchange(port: number, bytes: Uint8Array): Promise<SsiResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const decoder = new FrameDecoder();
    socket.on('data', (chunk) => {
      for (const event of decoder.push(chunk)) {
        if (event.kind === 'frame') {
          socket.destroy();
          resolve(decodeResponse(decodeMessage(event.frame)));
        }
      }
    });
    socket.on('error', reject);
    socket.write(bytes);
  });
}

const clientFor = (port: number) =>
  new SsiEcrClient({ connect: tcpTransportFactory({ host: '127.0.0.1', port }), minRequestGapMs: 0, connectionMode: 'per-request' });

describe(SsiEcrSimulator.name, () => {
  describe('malformed requests, one per error class (spec 5.1)', () => {
    it.each([
      ['wrong protocol id', frame('{"method":"PingDevice"}', { protocolId: 0xee }), 'E01', { details: 'actual: ee, expected: 66' }],
      ['bad LRC', frame('{"method":"PingDevice"}', { lrc: 0 }), 'E02', {}],
      ['bad JSON (notes frame 02 66 01 00 01 21)', Buffer.from('02660100012121', 'hex'), 'E03', {}],
      ['missing required key', frame('{"method":"Purchase","params":{"transCurrency":"980"}}'), 'E04', {}],
      ['unknown method', frame('{"method":"Teleport"}'), 'E05', {}],
      [
        'amount with a decimal point',
        frame('{"method":"Purchase","params":{"transAmount":"245.00","transCurrency":"980"}}'),
        'E09',
        { errorParams: 'transAmount' },
      ],
    ])('%s → %s', async (_name, bytes, code, extra) => {
      const port = await start();
      const response = await exchange(port, bytes);
      expect(response).toEqual(expect.objectContaining({ error: true, errorCode: code, ...extra }));
    });

    it('answers "Unknown" as the method when it cannot be read (spec 5.1)', async () => {
      const port = await start();
      expect((await exchange(port, Buffer.from('02660100012121', 'hex'))).method).toBe('Unknown');
    });
  });

  it('answers the golden PingDevice frame', async () => {
    const port = await start();
    const response = await exchange(port, Buffer.from('02660100177b226d6574686f64223a2250696e67446576696365227d2b', 'hex'));
    expect(response).toEqual(expect.objectContaining({ method: 'PingDevice', error: false }));
  });

  it('is busy (E06) for a second financial request and for GetLastResult during an operation; PingDevice still answers', async () => {
    const port = await start();
    const client = clientFor(port);
    await client.callOk({ method: 'Purchase', params: { transAmount: 100, transCurrency: '980' } });
    expect((await client.call({ method: 'Cash', params: { transAmount: 100, transCurrency: '980' } })).errorCode).toBe('E06');
    expect((await client.call({ method: 'GetLastResult' })).errorCode).toBe('E06');
    await expect(client.ping()).resolves.toBeUndefined();
  });

  it('Interrupt outside S02/S03 is E08', async () => {
    const port = await start();
    const response = await clientFor(port).call({ method: 'Interrupt' });
    expect([response.error, response.errorCode]).toEqual([true, 'E08']);
  });

  it('GetLastResult is E20 on a fresh terminal and survives a reboot afterwards', async () => {
    const port = await start();
    const client = clientFor(port);
    expect((await client.call({ method: 'GetLastResult' })).errorCode).toBe('E20');
    await client.callOk({ method: 'Purchase', params: { transAmount: 100, transCurrency: '980' } });
    while ((await client.getStatus()) !== 'S00');
    const before = await client.getLastResult();
    await client.restart();
    await new Promise((r) => setImmediate(r));
    expect(await client.getLastResult()).toEqual(before);
    expect(await client.getLastReceipt()).toContain('Purchase');
  });

  it('S06: refuses financial requests with E15 until a Z report', async () => {
    const port = await start();
    sim.setNeedsZReport(true);
    const client = clientFor(port);
    expect(await client.getStatus()).toBe('S06');
    expect((await client.call({ method: 'Purchase', params: { transAmount: 100, transCurrency: '980' } })).errorCode).toBe('E15');
  });

  it('Linux terminal: GetTerminalInfo in the Linux shape, Android-only methods are E05', async () => {
    const port = await start({ os: 'linux' });
    const client = clientFor(port);
    expect((await client.getTerminalInfo()).os).toBe('linux');
    expect((await client.call({ method: 'PrintPdfUrl', params: { url: 'https://example.com/a.pdf' } })).errorCode).toBe('E05');
  });

  it('Android terminal: PrintXml (with its LRC), PrintPdfUrl, RestartPaymentApp, merchant list with padded ids', async () => {
    const port = await start();
    const client = clientFor(port);
    await expect(client.printXml({ receipt: '<receipt><text>hi</text></receipt>' })).resolves.toBeUndefined();
    await expect(client.printPdfUrl({ url: 'https://example.com/a.pdf' })).resolves.toBeUndefined();
    await expect(client.restartPaymentApp()).resolves.toBeUndefined();
    expect((await client.getTerminalInfo()).os).toBe('android');
    expect(await client.getMerchantList()).toEqual({ merchantCount: 2, merchantList: ['000000060007176', 'EXIM CASH      '] });
  });

  it('holds a running operation at a status until released (test control), and Interrupt still acts on it', async () => {
    const port = await start();
    const client = clientFor(port);
    sim.holdAt('S02');
    await client.callOk({ method: 'Purchase', params: { transAmount: 100, transCurrency: '980' } });
    for (let polls = 0; polls < 100 && (await client.getStatus()) !== 'S02'; polls++);
    for (let polls = 0; polls < 100; polls++) expect(await client.getStatus()).toBe('S02');
    sim.holdAt(undefined);
    let polls = 0;
    while ((await client.getStatus()) !== 'S00') polls++;
    expect(polls).toBeGreaterThan(0);
    expect((await client.getLastResult()).transactionResult).toBe('APPROVED_ONLINE');

    sim.holdAt('S02');
    await client.callOk({ method: 'Purchase', params: { transAmount: 100, transCurrency: '980' } });
    for (let n = 0; n < 100 && (await client.getStatus()) !== 'S02'; n++);
    await client.callOk({ method: 'Interrupt' });
    expect(await client.getStatus()).toBe('S00');
    expect((await client.getLastResult()).transactionResult).toBe('CANCELLED');
    sim.holdAt(undefined);
  });

  it('timed mode advances without polling', async () => {
    const port = await start({ advance: { mode: 'timed', stepMs: 2 } });
    const client = clientFor(port);
    await client.callOk({ method: 'Echo', params: {} });
    // Nobody polls: the simulator's own timer walks the script back to S00.
    await waitFor(() => sim.status === 'S00', { timeoutMs: 2_000, what: 'the timed script to finish' });
    expect((await client.getLastResult()).originalTrnName).toBe('Echo');
  });
});
