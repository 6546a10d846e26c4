export * from './types';
export {
  assertSupported,
  CAPABILITIES,
  capabilityOf,
  DEFAULT_DIALECT,
  DriverError,
  supportedTypes,
  type Capability,
  type CapabilityTable,
  type DriverErrorCode,
} from './capabilities';
export { createDriver } from './create-driver';
export { MAX_MASKED_FRAME_CHARS } from './frames';
export { openTerminalCredentials, sealTerminalCredentials, terminalCredentialsAad } from './credentials';
export { JoinprotoDriver } from './joinproto.driver';
export { formatYyMmDdHhMmSs, JpayDriver } from './jpay.driver';
export { SsiEcrDriver } from './ssi-ecr.driver';
export { CURRENCY_NUMERIC, numericCurrency } from './shared';
export {
  JPAY_RESULT_CODES,
  JOINPROTO_RESULT_CODES,
  REASON_CODES,
  type ReasonCode,
  type ResultCodeEntry,
  type ResultCodeTable,
  renderResultCodesDoc,
  SSI_RESULT_CODES,
} from './result-codes';
