import { waitFor } from '@payorch/testing';

import { SchemaCheck, SchemaGate, type SchemaSource } from './schema';

/** A database whose answer the test sets, counting the questions. */
function source(): SchemaSource & { applied: boolean; failing: Error | null; asked: number } {
  const db = {
    applied: false,
    failing: null as Error | null,
    asked: 0,
    async migrationApplied(name: string) {
      db.asked += 1;
      if (db.failing) throw db.failing;
      return db.applied && name === 'm2';
    },
  };
  return db;
}

describe('SchemaCheck', () => {
  it('is down, naming the migration, until the migration is applied, then up without asking again', async () => {
    const db = source();
    const check = new SchemaCheck(db, 'm2');
    await expect(check.probe()()).rejects.toThrow(
      'the database schema is older than this build: migration m2 is not applied yet (the migration step applies it)',
    );
    db.applied = true;
    await expect(check.probe()()).resolves.toEqual({ migration: 'm2' });
    const asked = db.asked;
    db.applied = false; // migrations never go back: once seen applied, the answer is kept
    await expect(check.probe()()).resolves.toEqual({ migration: 'm2' });
    expect(db.asked).toBe(asked);
  });
});

describe('SchemaGate', () => {
  it('opens at once when the schema is there', async () => {
    const db = source();
    db.applied = true;
    let opened = 0;
    const waiting: string[] = [];
    new SchemaGate(new SchemaCheck(db, 'm2'), { onWaiting: (m) => waiting.push(m) }).start(() => (opened += 1));
    await waitFor(() => opened === 1, { what: 'the gate open' });
    expect(waiting).toEqual([]);
  });

  it('waits (saying so once), asks again after an error, and opens once when the migration is applied', async () => {
    const db = source();
    let opened = 0;
    const waiting: string[] = [];
    const errors: string[] = [];
    const gate = new SchemaGate(new SchemaCheck(db, 'm2'), { intervalMs: 5, onWaiting: (m) => waiting.push(m), onError: (e) => errors.push(e.message) });
    gate.start(() => (opened += 1));
    await waitFor(() => db.asked >= 3, { what: 'three questions' });
    db.failing = new Error('connection refused');
    await waitFor(() => errors.length >= 1, { what: 'an error reported' });
    db.failing = null;
    expect(opened).toBe(0);
    db.applied = true;
    await waitFor(() => opened === 1, { what: 'the gate open' });
    const asked = db.asked;
    await waitFor(() => db.asked === asked && opened === 1, { what: 'no question after opening' });
    expect({ waiting, errors: errors[0], opened }).toEqual({ waiting: ['m2'], errors: 'connection refused', opened: 1 });
    gate.close();
  });

  it('never opens once closed (the process began shutting down), even when the answer in flight says applied', async () => {
    let answer: ((applied: boolean) => void) | undefined;
    let asked = 0;
    const held: SchemaSource = {
      migrationApplied: () => {
        asked += 1;
        return new Promise<boolean>((resolve) => (answer = resolve));
      },
    };
    let opened = 0;
    const gate = new SchemaGate(new SchemaCheck(held, 'm2'), { intervalMs: 5 });
    gate.start(() => (opened += 1));
    await waitFor(() => answer !== undefined, { what: 'a question in flight' });
    gate.close();
    answer!(true);
    // The answer's continuation runs, finds the gate closed, and neither opens it nor asks again.
    await new Promise((resolve) => setImmediate(resolve));
    expect({ opened, asked }).toEqual({ opened: 0, asked: 1 });
  });
});
