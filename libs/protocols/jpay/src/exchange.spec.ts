import { runExchange, type ExchangeOptions } from './exchange';
import type { JpayEvent } from './events';
import { JpayEcdhe, JpaySessionKey } from './crypto';
import { sealElement } from './envelope';
import { frameOf } from './testing/builders';
import { scriptedPeer } from './testing/memory-transport';
import { el, parseXml, writeXml } from './xml';

const purchase = el('transaction', [el('type', 'purchase'), el('amount', '000000012300')]);
const approved = '<transaction><status>ok</status><receipt><seq>000001</seq><tstatus>approved</tstatus></receipt></transaction>';

function start(overrides: Partial<ExchangeOptions> = {}) {
  const peer = scriptedPeer();
  const events: JpayEvent[] = [];
  const result = runExchange(peer.transport, {
    command: 'transaction',
    request: purchase,
    idleTimeoutMs: 1_000,
    maxFrameBytes: 4096,
    onEvent: (e) => events.push(e),
    ...overrides,
  });
  return { peer, events, result };
}

describe(runExchange.name, () => {
  it('sends the command, answers keepalive/display/displayqrcode with ok, then returns the response', async () => {
    const { peer, events, result } = start();
    expect(await peer.nextWrite()).toBe('<transaction><type>purchase</type><amount>000000012300</amount></transaction>');
    peer.push(frameOf('<keepalive/>'));
    expect(await peer.nextWrite()).toBe('<keepalive><status>ok</status></keepalive>');
    peer.push(frameOf('<display><code>D1</code><msg>Подключение</msg></display>'));
    expect(await peer.nextWrite()).toBe('<display><status>ok</status></display>');
    peer.push(frameOf('<displayqrcode><status>show</status><url>https://qr/1</url></displayqrcode>'));
    expect(await peer.nextWrite()).toBe('<displayqrcode><status>ok</status></displayqrcode>');
    peer.push(frameOf(approved));
    const { root } = await result;
    expect(root.name).toBe('transaction');
    expect(events.map((e) => e.type)).toEqual(['command-sent', 'message', 'message', 'message', 'response']);
    expect(events[2]).toMatchObject({
      message: { type: 'display', code: 'D1', msg: 'Подключение' },
    });
  });

  it('answers an unknown message notimplemented and keeps waiting [JPAY-8-NOTIMPL]', async () => {
    const { peer, events, result } = start();
    await peer.nextWrite();
    peer.push(frameOf('<selectaid><aid>A0000000031010</aid></selectaid>'));
    expect(await peer.nextWrite()).toBe('<selectaid><status>notimplemented</status></selectaid>');
    peer.push(frameOf(approved));
    await result;
    expect(events).toContainEqual({
      type: 'unknown-message',
      command: 'transaction',
      root: 'selectaid',
    });
  });

  it('answers a message it cannot decode notimplemented', async () => {
    const { peer, result } = start();
    await peer.nextWrite();
    peer.push(frameOf('<displayqrcode><status>blink</status></displayqrcode>'));
    expect(await peer.nextWrite()).toBe('<displayqrcode><status>notimplemented</status></displayqrcode>');
    peer.push(frameOf(approved));
    await expect(result).resolves.toBeDefined();
  });

  it('cancels by answering the next keepalive cancelled after abort [JPAY-8.9-CANCEL]', async () => {
    const abort = new AbortController();
    const { peer, events, result } = start({ signal: abort.signal });
    await peer.nextWrite();
    peer.push(frameOf('<keepalive/>'));
    expect(await peer.nextWrite()).toContain('<status>ok</status>');
    abort.abort();
    peer.push(frameOf('<keepalive/>'));
    expect(await peer.nextWrite()).toBe('<keepalive><status>cancelled</status></keepalive>');
    peer.push(frameOf('<transaction><status>cancelled</status></transaction>'));
    expect((await result).root.children[0].text).toBe('cancelled');
    expect(events.some((e) => e.type === 'cancel-sent')).toBe(true);
  });

  it('routes dex, smartcard and card to the pluggable handlers and masks PAN tags in events', async () => {
    const { peer, events, result } = start({
      handlers: {
        dex: () => [{ name: '9F06', value: '000000001000' }],
        smartcard: () => ({ type: 'smartcard', command: 'end', indicator: 'ok' }),
        card: (m) => (m.code === 'open' ? { type: 'card', code: 'read', blockId: 4 } : { type: 'card', code: 'close' }),
      },
    });
    await peer.nextWrite();
    peer.push(frameOf('<dex><kernel-tags><tag name="5A" value="4000000010000001"/></kernel-tags></dex>'));
    expect(await peer.nextWrite()).toBe('<dex><status>ok</status><terminal-tags><tag name="9F06" value="000000001000"/></terminal-tags></dex>');
    peer.push(frameOf('<smartcard><command>newcard</command><descriptor>0705804E4B097000440028</descriptor></smartcard>'));
    expect(await peer.nextWrite()).toBe('<smartcard><command>end</command><indicator>ok</indicator></smartcard>');
    peer.push(frameOf('<smartcard><command>future</command></smartcard>'));
    expect(await peer.nextWrite()).toBe('<smartcard><command>next</command></smartcard>');
    peer.push(frameOf('<card><code>open</code><block-id>0</block-id></card>'));
    expect(await peer.nextWrite()).toBe('<card><code>read</code><block-id>4</block-id></card>');
    peer.push(frameOf('<card><code>read</code><status>ok</status><payload>AAEC</payload></card>'));
    expect(await peer.nextWrite()).toBe('<card><code>close</code></card>');
    peer.push(frameOf(approved));
    await result;
    expect(JSON.stringify(events)).not.toContain('4000000010000001');
    expect(events[1]).toMatchObject({
      message: { kernelTags: [{ name: '5A', value: '400000******0001' }] },
    });
  });

  it('falls back to the neutral answer when a handler throws', async () => {
    const { peer, events, result } = start({
      handlers: {
        smartcard: () => {
          throw new Error('boom');
        },
      },
    });
    await peer.nextWrite();
    peer.push(frameOf('<smartcard><command>newcard</command></smartcard>'));
    expect(await peer.nextWrite()).toBe('<smartcard><command>next</command></smartcard>');
    peer.push(frameOf(approved));
    await result;
    expect(events).toContainEqual({
      type: 'handler-failed',
      command: 'transaction',
      message: 'smartcard',
    });
  });

  it('fails with TRANSPORT_CLOSED when the application hangs up mid-command', async () => {
    const { peer, result } = start();
    await peer.nextWrite();
    peer.push(frameOf('<keepalive/>'));
    await peer.nextWrite();
    peer.hangUp();
    await expect(result).rejects.toMatchObject({ code: 'TRANSPORT_CLOSED' });
  });

  it('fails with TIMEOUT after idleTimeoutMs of silence and closes the connection', async () => {
    const { peer, result } = start({ idleTimeoutMs: 50 });
    await expect(result).rejects.toMatchObject({ code: 'TIMEOUT', reaction: 'close-connection' });
    expect(peer.closedByClient()).toBe(true);
  });

  it('fails on an oversized packet and on malformed XML, closing the connection', async () => {
    const oversized = start({ maxFrameBytes: 100 });
    await oversized.peer.nextWrite();
    oversized.peer.push(frameOf(`<keepalive>${'x'.repeat(200)}</keepalive>`));
    await expect(oversized.result).rejects.toMatchObject({ code: 'FRAME_TOO_LARGE' });
    expect(oversized.peer.closedByClient()).toBe(true);

    const malformed = start();
    await malformed.peer.nextWrite();
    malformed.peer.push(frameOf('<transaction><status>ok</transaction>'));
    await expect(malformed.result).rejects.toMatchObject({ code: 'XML_MALFORMED' });
  });

  it('rejects an encrypted message on a clear exchange', async () => {
    const key = new JpaySessionKey(Buffer.alloc(32, 7));
    const { peer, result } = start();
    await peer.nextWrite();
    peer.push(frameOf(writeXml(sealElement(el('keepalive'), key))));
    await expect(result).rejects.toMatchObject({ code: 'ENCRYPTION_MISMATCH' });
  });

  it.each(['aq:event', 'событие', 'ext.progress-2', 'x·y'])(
    'answers an unknown message named <%s> notimplemented, echoing the name its reader accepted, and completes [JPAY-8-NOTIMPL]',
    async (name) => {
      const { peer, events, result } = start();
      await peer.nextWrite();
      // Any name our reader accepts, our writer writes (xml.ts, one name check): the echo used to fail mid-command
      // for names with ':' or non-ASCII characters, and the transaction ended `unknown` instead of completed.
      peer.push(frameOf(`<${name} n="1"/>`));
      // Raced with the result: an exchange that ended instead of replying fails here with its error.
      expect(await Promise.race([peer.nextWrite(), result.then(() => 'ended without a reply')])).toBe(`<${name}><status>notimplemented</status></${name}>`);
      peer.push(frameOf(approved));
      expect((await result).root.name).toBe('transaction');
      expect(events).toContainEqual({ type: 'unknown-message', command: 'transaction', root: name });
    },
  );

  it('rejects a command it cannot encode before writing anything', async () => {
    const { peer, result } = start({ request: el('bad name') });
    await expect(result).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', reaction: 'reject-request' });
    expect(peer.written).toEqual([]);
  });

  it('takes a clear response to an encrypted command as no result [JPAY-9-MIRROR]', async () => {
    const key = new JpaySessionKey(Buffer.alloc(32, 9));
    const { peer, result } = start({ key });
    await peer.nextWrite();
    // The root name is not authenticated: anyone on the link could have written this.
    peer.push(frameOf(approved));
    await expect(result).rejects.toMatchObject({ code: 'ENCRYPTION_MISMATCH', reaction: 'close-connection' });
    expect(peer.closedByClient()).toBe(true);
  });

  it('encrypts the command and mirrors encryption on replies [JPAY-9-MIRROR]', async () => {
    const key = new JpaySessionKey(Buffer.alloc(32, 9));
    const { peer, result } = start({ key });
    const sent = parseXml(await peer.nextWrite());
    expect(sent.children.map((c) => c.name)).toEqual(['encrypted']);
    peer.push(frameOf(writeXml(sealElement(el('keepalive'), key))));
    const reply = parseXml(await peer.nextWrite());
    expect(reply.children.map((c) => c.name)).toEqual(['encrypted']);
    peer.push(frameOf('<display><code>D4</code></display>'));
    expect(await peer.nextWrite()).toBe('<display><status>ok</status></display>');
    peer.push(frameOf(writeXml(sealElement(parseXml(approved), key))));
    expect(await result).toMatchObject({ encrypted: true });
  });

  it('derives the key from server-handshake on a secure login', async () => {
    const client = new JpayEcdhe();
    const server = new JpayEcdhe();
    const { peer, result } = start({
      command: 'login',
      request: el('login', [el('password', '12345678')]),
      loginEcdhe: client,
    });
    await peer.nextWrite();
    const key = server.deriveKey(client.publicPoint);
    const handshake = Buffer.concat([Buffer.of(0x41), server.publicPoint]).toString('base64');
    const response = sealElement(el('login', [el('status', 'ok'), el('token', 'ABCD')], { 'server-handshake': handshake }), key);
    peer.push(frameOf(writeXml(response)));
    const { root, derivedKey } = await result;
    expect(root.children.map((c) => c.text)).toEqual(['ok', 'ABCD']);
    expect(derivedKey).toBeInstanceOf(JpaySessionKey);
  });
});
