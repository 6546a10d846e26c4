import { type ChildProcess, spawn } from 'node:child_process';
import { type AddressInfo, createServer, Socket } from 'node:net';

import { waitFor } from './wait';

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves true when something accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(200, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.connect(port, '127.0.0.1');
  });
}

/**
 * A `redis-server` that one test owns, on a spare loopback port, without persistence: kill() is a
 * SIGKILL (all data gone, like a crash of a cache-only Redis), restart() brings it back empty on the
 * same port. Never touches the shared Redis on 6379.
 */
export class OwnedRedis {
  private child: ChildProcess | undefined;
  private port_ = 0;

  /**
   * `extraArgs` are appended to the command line (a cluster node: `--cluster-enabled yes …`, see
   * OwnedRedisCluster); `port` fixes the port (0: a free one on the first start()).
   */
  constructor(
    private readonly extraArgs: readonly string[] = [],
    port = 0,
  ) {
    this.port_ = port;
  }

  get port(): number {
    return this.port_;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port_}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts on a free port (first call) or on the same port again (after kill()). */
  async start(timeoutMs = 10_000): Promise<this> {
    if (this.child) return this;
    if (!this.port_) this.port_ = await freePort();
    const child = spawn('redis-server', ['--port', String(this.port_), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...this.extraArgs], {
      stdio: 'ignore',
    });
    this.child = child;
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
    });
    await waitFor(() => accepts(this.port_), { timeoutMs, intervalMs: 25, what: 'owned redis accepting connections' });
    return this;
  }

  /** SIGKILL, then waits until the port refuses connections. */
  async kill(timeoutMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
    child.kill('SIGKILL');
    await exited;
    this.child = undefined;
    await waitFor(async () => !(await accepts(this.port_)), { timeoutMs, intervalMs: 25, what: 'owned redis refusing connections' });
  }

  /** kill() then start() on the same port: an empty Redis, as after a restart without persistence. */
  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  async stop(): Promise<void> {
    await this.kill();
  }
}
