import type { INestApplication } from '@nestjs/common';

import { createLogger } from '@payorch/logging';

import { drainAndClose, isDraining } from './shutdown';

const logger = createLogger({ name: 'shutdown-spec', level: 'silent' });

/** The parts of a Nest application drainAndClose uses; `close` is what the test controls. */
function fakeApp(close: () => Promise<void>) {
  const health = {};
  const calls: string[] = [];
  const app = {
    get: () => health,
    getHttpServer: () => ({ closeIdleConnections: () => calls.push('closeIdle') }),
    close: async () => {
      calls.push('close');
      await close();
    },
  } as unknown as INestApplication;
  return { app, health, calls };
}

describe(drainAndClose.name, () => {
  it('marks the app draining before anything closes, waits the drain delay, then closes it', async () => {
    const { app, health, calls } = fakeApp(async () => undefined);
    expect(isDraining(health)).toBe(false);
    const started = Date.now();
    const outcome = drainAndClose(app, { drainDelayMs: 50, graceMs: 5_000, logger });
    expect([isDraining(health), calls]).toEqual([true, []]);
    expect(await outcome).toBe('closed');
    expect(calls).toContain('close');
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });

  it('gives up at the grace period when the app does not finish closing', async () => {
    const { app } = fakeApp(() => new Promise<void>(() => undefined));
    const started = Date.now();
    expect(await drainAndClose(app, { drainDelayMs: 0, graceMs: 1_000, logger })).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});
