export { SsiEcrSimulator, emptySimulatorState, type BatchEntry, type SimulatorPersistentState, type SsiEcrSimulatorOptions } from './simulator';
export { DEFAULT_AMOUNT_LIMIT, DEFAULT_SCENARIO, SCENARIOS, scenarioFor, type Scenario } from './scenarios';
