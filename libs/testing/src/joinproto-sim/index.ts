export { JoinprotoTerminalSimulator, type JournalEntry, type ServiceResult, type TerminalSimulatorOptions } from './terminal';
export { encodeHostMessage, ProcessingHostSimulator, readHostMessage, type HostAnswer, type HostRequest, type ProcessingHostOptions } from './processing-host';
export { SCENARIO_TABLE, scenarioFor, type Scenario } from './scenarios';
