import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

import { decodeMessage, DEFAULT_MAX_FRAME_BYTES, FrameDecoder, type Message } from '@payorch/joinproto';
import { nextEvent } from '@payorch/testing';

import { startSimulators, type RunningSimulators } from './simulators';

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** The first Joinproto message a terminal sends to a till that connected. */
async function firstJoinprotoMessage(socket: Socket): Promise<Message> {
  const decoder = new FrameDecoder({ maxFrameBytes: DEFAULT_MAX_FRAME_BYTES });
  for (;;) {
    const [chunk] = await nextEvent<[Buffer]>(socket, 'data', {
      what: 'bytes from the Joinproto simulator',
    });
    for (const event of decoder.push(chunk)) {
      if (event.kind === 'frame') return decodeMessage(event.frame, 'terminal->till');
    }
  }
}

/** Three consecutive free ports on 127.0.0.1 (held together while probing, then released). */
async function freePortRun(): Promise<number> {
  for (;;) {
    const first = createServer();
    await new Promise<void>((resolve) => first.listen(0, '127.0.0.1', resolve));
    const base = (first.address() as AddressInfo).port;
    const held: Server[] = [first];
    for (const port of [base + 1, base + 2]) {
      const server = createServer();
      const ok = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (ok) held.push(server);
    }
    await Promise.all(held.map((server) => new Promise((resolve) => server.close(resolve))));
    if (held.length === 3 && base + 2 <= 65535) return base;
  }
}

describe(startSimulators.name, () => {
  let sut: RunningSimulators | undefined;

  afterEach(async () => {
    await sut?.close();
    sut = undefined;
  });

  it('runs a Joinproto, a JPAY and an SSI ECR simulator on ephemeral 127.0.0.1 ports', async () => {
    sut = await startSimulators();
    const { joinproto, jpay, ssiEcr } = sut.ports;
    expect(new Set([joinproto, jpay, ssiEcr]).size).toBe(3);

    // The Joinproto terminal greets a till that connects with an echo request (spec 1).
    const till = await dial(joinproto);
    await expect(firstJoinprotoMessage(till)).resolves.toMatchObject({ type: 'EchoRequest' });
    till.destroy();
    for (const port of [jpay, ssiEcr]) (await dial(port)).destroy();
  });

  it('uses base, base+1 and base+2 when given a base port, and frees them on close', async () => {
    const base = await freePortRun();
    sut = await startSimulators(base);
    expect(sut.ports).toEqual({ joinproto: base, jpay: base + 1, ssiEcr: base + 2 });

    await sut.close();
    sut = undefined;
    for (const port of [base, base + 1, base + 2]) {
      await expect(dial(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    }
    // A bound, not a timing check: finding three consecutive free ports takes several probes on a machine whose
    // other tests hold thousands of loopback sockets.
  }, 30_000);
});
