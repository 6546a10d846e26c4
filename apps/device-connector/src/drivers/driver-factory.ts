import { createDriver } from '@payorch/drivers';

import type { DriverFactory } from '../terminals/terminal-hub';

/** The production driver factory: one @payorch/drivers driver per terminal (Joinproto, JPAY, SSI ECR). */
export function defaultDriverFactory(): DriverFactory {
  return createDriver;
}
