import { JoinprotoDriver } from './joinproto.driver';
import { JpayDriver } from './jpay.driver';
import { SsiEcrDriver } from './ssi-ecr.driver';
import type { DriverConfig, TerminalDriver } from './types';

/** One driver per terminal; the caller runs one command at a time on it. */
export function createDriver(config: DriverConfig): TerminalDriver {
  switch (config.protocol) {
    case 'JOINPROTO':
      return new JoinprotoDriver(config);
    case 'JPAY':
      return new JpayDriver(config);
    case 'SSI_ECR':
      return new SsiEcrDriver(config);
  }
}
