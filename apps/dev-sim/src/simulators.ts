import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';
import { JpaySimulator } from '@payorch/testing/jpay-sim';
import { SsiEcrSimulator } from '@payorch/testing/ssi-ecr-sim';

export interface RunningSimulators {
  ports: { joinproto: number; jpay: number; ssiEcr: number };
  close(): Promise<void>;
}

/**
 * One terminal simulator per protocol on 127.0.0.1: Joinproto on `base`, JPAY (aQsi dialect) on
 * `base + 1`, SSI ECR on `base + 2`; ephemeral ports when `base` is 0. Register terminals with
 * connection `{ "kind": "tcp", "host": "127.0.0.1", "port": <port> }` (docs/runbooks/agent.md).
 */
export async function startSimulators(base = 0): Promise<RunningSimulators> {
  const joinproto = new JoinprotoTerminalSimulator();
  const jpay = new JpaySimulator({ dialect: 'aqsi' });
  const ssi = new SsiEcrSimulator({ host: '127.0.0.1', port: base ? base + 2 : 0 });
  const started: Array<() => Promise<unknown>> = [];
  try {
    const joinprotoPort = (await joinproto.listen(base, '127.0.0.1')).port;
    started.push(() => joinproto.close());
    const jpayPort = await jpay.listen(base ? base + 1 : 0, '127.0.0.1');
    started.push(() => jpay.close());
    const ssiPort = (await ssi.start()).port;
    started.push(() => ssi.stop());
    return {
      ports: { joinproto: joinprotoPort, jpay: jpayPort, ssiEcr: ssiPort },
      close: async () => {
        await Promise.allSettled(started.map((stop) => stop()));
      },
    };
  } catch (error) {
    // A port already in use: do not leave the simulators that did start listening.
    await Promise.allSettled(started.map((stop) => stop()));
    throw error;
  }
}
