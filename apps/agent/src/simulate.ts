import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';
import { JpaySimulator } from '@payorch/testing/jpay-sim';
import { SsiEcrSimulator } from '@payorch/testing/ssi-ecr-sim';

export interface RunningSimulators {
  ports: { joinproto: number; jpay: number; ssiEcr: number };
  close(): Promise<void>;
}

/**
 * `--simulate`: one terminal simulator per protocol on 127.0.0.1, for demos. Register terminals with
 * connection `{ "kind": "tcp", "host": "127.0.0.1", "port": <port> }` (docs/runbooks/agent.md).
 */
export async function startSimulators(base = 0): Promise<RunningSimulators> {
  const joinproto = new JoinprotoTerminalSimulator();
  const jpay = new JpaySimulator({ dialect: 'aqsi' });
  const ssi = new SsiEcrSimulator({ host: '127.0.0.1', port: base ? base + 2 : 0 });
  const joinprotoPort = (await joinproto.listen(base ? base : 0, '127.0.0.1')).port;
  const jpayPort = await jpay.listen(base ? base + 1 : 0, '127.0.0.1');
  const ssiPort = (await ssi.start()).port;
  return {
    ports: { joinproto: joinprotoPort, jpay: jpayPort, ssiEcr: ssiPort },
    close: async () => {
      await Promise.allSettled([joinproto.close(), jpay.close(), ssi.stop()]);
    },
  };
}
