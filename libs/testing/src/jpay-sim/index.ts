export { JpaySimulator, DEFAULT_ADMIN_PASSWORD, type JpaySimulatorOptions } from './simulator';
export { NoResponse, type Conversation } from './conversation';
export { SimLedger, SIM_MID, SIM_TID, type LogEntry, type LogType } from './ledger';
export { SCENARIOS, SIM_CARD, scenarioOf, type ScenarioName } from './scenarios';
