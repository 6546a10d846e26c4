import { randomBytes } from 'node:crypto';

import { TunnelStreamError } from './errors';
import type { LinkDescriptor } from './link';
import { Multiplexer, type IncomingOpen } from './multiplexer';
import type { TunnelStream } from './stream';
import { collect, writeAll } from './testing/collect';
import { createMuxPair, settle, startPair, type MuxPair } from './testing/mux-pair';
import type { TunnelCloseInfo } from './transport';

const TERMINAL: LinkDescriptor = { kind: 'tcp-connect', host: '10.0.0.5', port: 2000 };

/** Agent side that echoes every accepted stream back and ends when the peer ends. */
function echoOnAgent(pair: MuxPair): void {
  pair.agent.setOpenHandler((request) => {
    const stream = request.accept();
    stream.onData((chunk) => stream.write(chunk));
    stream.onEnd(() => stream.end());
  });
}

function closeInfo(mux: Multiplexer): Promise<TunnelCloseInfo> {
  return new Promise((resolve) => mux.onClose(resolve));
}

describe(Multiplexer.name, () => {
  let pair: MuxPair;

  afterEach(() => {
    pair?.agent.close();
    pair?.connector.close();
  });

  describe('handshake and version negotiation', () => {
    it('agrees on the version, the common capabilities and both software names', async () => {
      pair = createMuxPair({
        agent: { software: 'payorch-agent/1.2.0', capabilities: ['serial', 'tcp-listen'] },
        connector: { software: 'device-connector/3.0.0', capabilities: ['tcp-listen', 'relay'] },
      });
      const [agentSession, connectorSession] = await startPair(pair);
      expect(agentSession).toEqual({
        version: 1,
        peerSoftware: 'device-connector/3.0.0',
        capabilities: ['tcp-listen'],
        peerMaxFrameBytes: 65_024,
      });
      expect(connectorSession).toEqual({
        version: 1,
        peerSoftware: 'payorch-agent/1.2.0',
        capabilities: ['tcp-listen'],
        peerMaxFrameBytes: 65_024,
      });
      expect(pair.agent.state).toBe('open');
    });

    it('picks the highest version both sides support', async () => {
      pair = createMuxPair({
        agent: { supportedVersions: [1, 2, 3] },
        connector: { supportedVersions: [2, 3, 5] },
      });
      const [agentSession, connectorSession] = await startPair(pair);
      expect(agentSession.version).toBe(3);
      expect(connectorSession.version).toBe(3);
    });

    it('closes both sides with VERSION_REJECTED when no version is common', async () => {
      pair = createMuxPair({
        agent: { supportedVersions: [2] },
        connector: { supportedVersions: [1] },
      });
      const agentClosed = closeInfo(pair.agent);
      const connectorClosed = closeInfo(pair.connector);
      pair.connector.start();
      pair.agent.start();
      const agentInfo = await agentClosed;
      expect(agentInfo.code).toBe('VERSION_REJECTED');
      expect(agentInfo.message).toContain('NO_COMMON_VERSION');
      expect(agentInfo.message).toContain('peer supports 1');
      expect((await connectorClosed).code).toBe('VERSION_REJECTED');
    });

    it('lets the connector refuse an agent by policy', async () => {
      pair = createMuxPair({
        agent: { software: 'payorch-agent/0.9.0' },
        connector: {
          validateHello: (hello) => (hello.software.endsWith('/0.9.0') ? { message: 'agent 0.9 is retired' } : undefined),
        },
      });
      const agentClosed = closeInfo(pair.agent);
      pair.connector.start();
      pair.agent.start();
      expect(await agentClosed).toEqual({
        code: 'VERSION_REJECTED',
        message: 'POLICY: agent 0.9 is retired (peer supports 1)',
      });
    });

    it('refuses streams before the handshake and after close', () => {
      pair = createMuxPair();
      expect(() => pair.connector.openStream(TERMINAL)).toThrow(expect.objectContaining({ code: 'NOT_READY' }));
      pair.connector.start();
      pair.connector.close();
      expect(() => pair.connector.openStream(TERMINAL)).toThrow(expect.objectContaining({ code: 'TUNNEL_CLOSED' }));
      expect(pair.connector.sendControl({ type: 'goaway', reason: 'x' })).toBe(false);
    });
  });

  describe('streams', () => {
    it('carries bytes both ways and closes gracefully in both directions', async () => {
      pair = createMuxPair();
      const accepted = new Promise<IncomingOpen>((resolve) => pair.agent.setOpenHandler(resolve));
      await startPair(pair);
      const connectorStream = await new Promise<TunnelStream>((resolve) => {
        const stream = pair.connector.openStream(TERMINAL, { terminalId: 'T-1' });
        stream.write(Uint8Array.from([1, 2, 3]));
        stream.onOpen(() => resolve(stream));
        void accepted.then((request) => {
          expect(request).toMatchObject({ link: TERMINAL, terminalId: 'T-1', streamId: 2 });
          const agentStream = request.accept();
          agentStream.onData((chunk) => agentStream.write(Uint8Array.from(chunk, (byte) => byte * 2)));
          agentStream.onEnd(() => agentStream.end('LINK_ENDED'));
        });
      });
      const result = collect(connectorStream);
      connectorStream.write(Uint8Array.from([4]));
      connectorStream.end();
      expect(await result).toEqual({
        data: Buffer.from([2, 4, 6, 8]),
        ended: true,
        error: undefined,
      });
      expect(connectorStream.state).toBe('closed');
      await settle();
      expect(pair.agent.stats.streams).toBe(0);
      expect(pair.connector.stats.streams).toBe(0);
    });

    it('runs many concurrent streams without mixing their bytes', async () => {
      pair = createMuxPair({
        agent: { initialWindow: 16 * 1024 },
        connector: { initialWindow: 16 * 1024 },
      });
      echoOnAgent(pair);
      await startPair(pair);
      const payloads = Array.from({ length: 40 }, (_, i) => randomBytes(1 + ((i * 7919) % 100_000)));
      const results = await Promise.all(
        payloads.map(async (payload, i) => {
          const stream = await pair.connector.open({
            kind: 'tcp-connect',
            host: `10.0.0.${i}`,
            port: 2000,
          });
          const received = collect(stream);
          await writeAll(stream, payload, 4096 + i);
          return received;
        }),
      );
      results.forEach((result, i) => {
        expect(result.error).toBeUndefined();
        expect(result.data.equals(payloads[i])).toBe(true);
      });
      expect(pair.connector.stats.protocolErrors + pair.agent.stats.protocolErrors).toBe(0);
    });

    it('open() drops its close listener once the stream is open: closing it later builds no "closed before open" error', async () => {
      // Issue 19: the listener stayed and built a TunnelStreamError (a stack trace) for the settled promise when the
      // stream closed: one per terminal link probe of a reconnect storm.
      // No open timeout: its own close listener (clearing the timer) would stay too.
      pair = createMuxPair({ connector: { openTimeoutMs: 0 } });
      echoOnAgent(pair);
      await startPair(pair);
      const stream = await pair.connector.open(TERMINAL);
      const listeners = (stream as unknown as { closeListeners: { hasListeners: boolean } }).closeListeners;
      expect(listeners.hasListeners).toBe(false);
      const seen: Array<TunnelStreamError | undefined> = [];
      stream.onClose((error) => seen.push(error));
      stream.destroy();
      expect(seen).toEqual([undefined]);
    });

    it('lets the agent open streams too, with odd ids that never collide with the connector', async () => {
      pair = createMuxPair();
      const ids: number[] = [];
      pair.connector.setOpenHandler((request) => {
        ids.push(request.streamId);
        request.accept();
      });
      pair.agent.setOpenHandler((request) => {
        ids.push(request.streamId);
        request.accept();
      });
      await startPair(pair);
      await Promise.all([
        pair.agent.open({ kind: 'relay-tcp', host: 'acq.example', port: 443 }),
        pair.connector.open(TERMINAL),
        pair.agent.open({ kind: 'relay-tcp', host: 'acq.example', port: 443 }),
        pair.connector.open(TERMINAL),
      ]);
      expect(ids.sort((a, b) => a - b)).toEqual([1, 2, 3, 4]);
    });

    it('reports open failure with the peer reason code', async () => {
      pair = createMuxPair();
      pair.agent.setOpenHandler((request) => request.reject('REFUSED', 'ECONNREFUSED 10.0.0.5:2000'));
      await startPair(pair);
      const failure = pair.connector.open(TERMINAL);
      await expect(failure).rejects.toBeInstanceOf(TunnelStreamError);
      await expect(failure).rejects.toMatchObject({
        code: 'REFUSED',
        message: 'ECONNREFUSED 10.0.0.5:2000',
        remote: true,
        streamId: 2,
      });
      expect(pair.connector.stats.streams).toBe(0);
    });

    it('refuses OPEN with UNSUPPORTED_LINK when no handler is set', async () => {
      pair = createMuxPair();
      await startPair(pair);
      await expect(pair.connector.open(TERMINAL)).rejects.toMatchObject({
        code: 'UNSUPPORTED_LINK',
        remote: true,
      });
    });

    it('rejects invalid link descriptors before sending anything', async () => {
      pair = createMuxPair();
      await startPair(pair);
      expect(() => pair.connector.openStream({ kind: 'tcp-connect', host: 'h', port: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_LINK' }));
      expect(pair.connector.stats.streams).toBe(0);
    });

    it('propagates RESET with its code, and a reset stream ignores late frames without counting errors', async () => {
      pair = createMuxPair();
      const agentStream = new Promise<TunnelStream>((resolve) => pair.agent.setOpenHandler((request) => resolve(request.accept())));
      await startPair(pair);
      const stream = await pair.connector.open(TERMINAL);
      const remote = await agentStream;
      const remoteClosed = collect(remote);
      remote.write(Uint8Array.of(1, 2, 3));
      stream.destroy('LINK_ERROR', 'terminal unplugged');
      const result = await remoteClosed;
      expect(result.error).toMatchObject({
        code: 'LINK_ERROR',
        message: 'terminal unplugged',
        remote: true,
      });
      await settle();
      expect(pair.connector.stats.protocolErrors).toBe(0);
      expect(pair.agent.stats.protocolErrors).toBe(0);
    });

    it('times out an OPEN the peer never answers', async () => {
      pair = createMuxPair({ connector: { openTimeoutMs: 20 } });
      pair.agent.setOpenHandler(() => undefined);
      await startPair(pair);
      await expect(pair.connector.open(TERMINAL)).rejects.toMatchObject({
        code: 'TIMEOUT',
        remote: false,
      });
    });

    it('refuses more than maxStreams, locally and from the peer', async () => {
      pair = createMuxPair({ agent: { maxStreams: 2 }, connector: { maxStreams: 3 } });
      pair.agent.setOpenHandler((request) => request.accept());
      await startPair(pair);
      await pair.connector.open(TERMINAL);
      await pair.connector.open(TERMINAL);
      await expect(pair.connector.open(TERMINAL)).rejects.toMatchObject({
        code: 'LIMIT_EXCEEDED',
        remote: true,
      });
      pair.connector.openStream(TERMINAL);
      expect(() => pair.connector.openStream(TERMINAL)).toThrow(expect.objectContaining({ code: 'LIMIT_EXCEEDED' }));
    });
  });

  describe('control messages', () => {
    it('delivers a terminal list to the agent and status to the connector', async () => {
      pair = createMuxPair();
      const agentGot = new Promise((resolve) => pair.agent.onControl(resolve));
      const connectorGot = new Promise((resolve) => pair.connector.onControl(resolve));
      await startPair(pair);
      const list = {
        type: 'terminal-list' as const,
        terminals: [
          {
            terminalId: 'T-1',
            protocol: 'ssi-ecr' as const,
            link: { kind: 'serial' as const, path: '/dev/ttyUSB0', baudRate: 9600 },
          },
        ],
      };
      expect(pair.connector.sendControl(list)).toBe(true);
      pair.agent.sendControl({ type: 'link-status', terminalId: 'T-1', state: 'up' });
      expect(await agentGot).toEqual(list);
      expect(await connectorGot).toEqual({ type: 'link-status', terminalId: 'T-1', state: 'up' });
    });

    it('refuses to encode an invalid control message', async () => {
      pair = createMuxPair();
      await startPair(pair);
      expect(() => pair.agent.sendControl({ type: 'link-status', terminalId: '', state: 'up' })).toThrow(expect.objectContaining({ code: 'INVALID_CONTROL' }));
    });
  });

  describe('teardown', () => {
    it('closes every stream with TUNNEL_CLOSED when the transport goes away', async () => {
      pair = createMuxPair();
      pair.agent.setOpenHandler((request) => {
        if (request.terminalId !== 'slow') request.accept();
      });
      await startPair(pair);
      const open = await Promise.all([pair.connector.open(TERMINAL), pair.connector.open(TERMINAL)]);
      const closes = open.map((stream) => collect(stream));
      const pending = pair.connector.open(TERMINAL, { terminalId: 'slow' });
      const connectorClosed = closeInfo(pair.connector);
      const agentClosed = closeInfo(pair.agent);
      await settle();
      pair.agentTransport.disconnect(1001, 'agent restarting');

      for (const result of await Promise.all(closes)) {
        expect(result.error).toMatchObject({ code: 'TUNNEL_CLOSED', remote: false });
        expect(result.error?.message).toContain('TRANSPORT_CLOSED');
      }
      await expect(pending).rejects.toMatchObject({ code: 'TUNNEL_CLOSED' });
      expect(await connectorClosed).toEqual({
        code: 'TRANSPORT_CLOSED',
        message: 'transport closed (1001) agent restarting',
      });
      expect(pair.connector.stats).toMatchObject({
        state: 'closed',
        streams: 0,
        sendQueuedBytes: 0,
        receiveCommittedBytes: 0,
      });
      expect(await agentClosed).toMatchObject({ code: 'TRANSPORT_CLOSED' });
    });

    it('closes the transport with code 1000 on close() and tells late listeners why', async () => {
      pair = createMuxPair();
      await startPair(pair);
      const agentStream = pair.agent.openStream({ kind: 'relay-tcp', host: 'a.example', port: 1 });
      const result = collect(agentStream);
      pair.agent.close('shutting down');
      expect((await result).error?.code).toBe('TUNNEL_CLOSED');
      expect(await closeInfo(pair.agent)).toEqual({
        code: 'LOCAL_CLOSE',
        message: 'shutting down',
      });
      expect(await closeInfo(pair.connector)).toEqual({
        code: 'TRANSPORT_CLOSED',
        message: 'transport closed (1000) LOCAL_CLOSE: shutting down',
      });
    });
  });
});
