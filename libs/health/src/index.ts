/**
 * @payorch/health: readiness and liveness shared by every app (docs/runbooks/faults.md). Readiness
 * probes run as @nestjs/terminus indicators and feed `payorch_ready{check}`.
 */
export {
  type CheckReport,
  databasePing,
  legacyHealth,
  liveness,
  Readiness,
  type ReadinessOptions,
  type ReadinessProbe,
  type ReadinessReport,
  redisPing,
} from './readiness';
export { SchemaCheck, SchemaGate, type SchemaSource } from './schema';
export { beginDrain, drainAndClose, type DrainOptions, exitGracefullyOnSignals, isDraining } from './shutdown';
export { ServiceHealth, ServiceHealthController, type ServiceHealthOptions, type StatusSink } from './service-health';
