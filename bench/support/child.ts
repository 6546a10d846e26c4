import { type ChildProcess, fork } from 'node:child_process';

/** A child process (`entry` forked with `args`, the same node flags) answering typed messages over IPC. */
export class Child {
  readonly process: ChildProcess;
  private readonly waiting = new Map<string, Array<(message: Record<string, unknown>) => void>>();
  private exited = false;

  constructor(entry: string, args: string[], execArgv: string[] = process.execArgv) {
    this.process = fork(entry, args, { execArgv, stdio: 'inherit' });
    this.process.on('message', (message: Record<string, unknown>) => {
      const waiters = this.waiting.get(message.type as string);
      this.waiting.delete(message.type as string);
      for (const resolve of waiters ?? []) resolve(message);
    });
    this.process.once('exit', () => (this.exited = true));
  }

  next<T = Record<string, unknown>>(type: string, timeoutMs = 60_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no '${type}' from the child within ${timeoutMs} ms`)), timeoutMs);
      const list = this.waiting.get(type) ?? [];
      list.push((message) => {
        clearTimeout(timer);
        resolve(message as T);
      });
      this.waiting.set(type, list);
    });
  }

  async ask<T>(type: string, answer: string, extra: object = {}): Promise<T> {
    const reply = this.next<T>(answer);
    this.process.send({ type, ...extra });
    return reply;
  }

  send(message: object): void {
    this.process.send(message);
  }

  /** Asks the child to exit by itself (bounded: 30 s). */
  async exit(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((resolve) => this.process.once('exit', resolve));
    this.process.send({ type: 'exit' });
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 30_000).unref())]);
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((resolve) => this.process.once('exit', resolve));
    this.process.kill(signal);
    await exited;
  }
}
