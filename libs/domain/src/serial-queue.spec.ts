import { KeyedSerialQueue, QueueFullError } from './serial-queue';

/** A task that runs until `finish` is called; `started` resolves once it runs. */
function gate(log: string[], name: string) {
  let finish!: (fail?: Error) => void;
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  const task = () =>
    new Promise<string>((resolve, reject) => {
      log.push(`start ${name}`);
      started();
      finish = (fail) => {
        log.push(`end ${name}`);
        if (fail) reject(fail);
        else resolve(name);
      };
    });
  return { task, running, finish: (fail?: Error) => finish(fail) };
}

/** Queues task `a` under `keyA`, then task `b` under `keyB`. */
function queueTwo(sut: KeyedSerialQueue, keyA: string, keyB: string) {
  const log: string[] = [];
  const a = gate(log, 'a');
  const b = gate(log, 'b');
  return { log, a, b, first: sut.run(keyA, a.task), second: sut.run(keyB, b.task) };
}

describe(KeyedSerialQueue.name, () => {
  it('runs the tasks of one key one at a time, in order, and a failed task does not stop the next', async () => {
    const { log, a, b, first, second } = queueTwo(new KeyedSerialQueue(), 't1', 't1');
    await a.running;
    expect(log).toEqual(['start a']);
    a.finish(new Error('boom'));
    await expect(first).rejects.toThrow('boom');
    await b.running;
    b.finish();
    await expect(second).resolves.toBe('b');
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b']);
  });

  it('does not make one key wait for another', async () => {
    const { log, a, b, first, second } = queueTwo(new KeyedSerialQueue(), 't1', 't2');
    await Promise.all([a.running, b.running]);
    b.finish();
    a.finish();
    await expect(Promise.all([first, second])).resolves.toEqual(['a', 'b']);
    expect(log).toEqual(['start a', 'start b', 'end b', 'end a']);
  });

  it('refuses a task past the limit of its key without running it, and counts depth per key', async () => {
    const sut = new KeyedSerialQueue({ limit: 2 });
    const { a, b, first, second } = queueTwo(sut, 't1', 't1');
    let ranThird = false;
    await expect(sut.run('t1', async () => (ranThird = true))).rejects.toBeInstanceOf(QueueFullError);
    await expect(sut.run('t2', async () => 'other key')).resolves.toBe('other key');
    expect([sut.depth('t1'), sut.depth('t2')]).toEqual([2, 0]);
    await a.running;
    a.finish();
    await b.running;
    b.finish();
    await Promise.all([first, second]);
    expect(ranThird).toBe(false);
    expect(sut.depth('t1')).toBe(0);
  });

  it('runNext starts its task once the running one settled, ahead of the waiting ones (in their own order), past the limit', async () => {
    const sut = new KeyedSerialQueue({ limit: 2 });
    const { log, a, b, first, second } = queueTwo(sut, 't1', 't1');
    await a.running;
    const c = gate(log, 'c');
    const d = gate(log, 'd');
    const third = sut.runNext('t1', c.task);
    const fourth = sut.runNext('t1', d.task);
    expect(sut.depth('t1')).toBe(4);
    a.finish();
    await c.running;
    c.finish();
    await d.running;
    d.finish();
    await b.running;
    b.finish();
    await expect(Promise.all([first, second, third, fourth])).resolves.toEqual(['a', 'b', 'c', 'd']);
    expect(log).toEqual(['start a', 'end a', 'start c', 'end c', 'start d', 'end d', 'start b', 'end b']);
    expect(sut.depth('t1')).toBe(0);
  });

  it('runNext on an idle key runs at once (on a later tick), and a task queued after it waits for it', async () => {
    const sut = new KeyedSerialQueue();
    const log: string[] = [];
    const a = gate(log, 'a');
    const first = sut.runNext('t1', a.task);
    const second = sut.run('t1', async () => void log.push('b'));
    expect(log).toEqual([]);
    await a.running;
    a.finish();
    await Promise.all([first, second]);
    expect(log).toEqual(['start a', 'end a', 'b']);
  });

  it('forgets an idle key and serves it again afterwards', async () => {
    const sut = new KeyedSerialQueue({ limit: 1 });
    await expect(sut.run('t1', async () => 1)).resolves.toBe(1);
    expect(sut.depth('t1')).toBe(0);
    await expect(sut.run('t1', async () => 2)).resolves.toBe(2);
  });
});
