export {
  SANDBOX_MERCHANT,
  startAssistSandbox,
  type AssistSandbox,
  type AssistSandboxOptions,
  type ModeOptions,
  type SandboxEndpoint,
  type SandboxMode,
  type SandboxStats,
} from './server';
export { SCENARIOS, type SandboxOperation, type SandboxOperationType, type SandboxOrder, type SandboxOrderState } from './orders';
export { TEST_MERCHANT_PRIVATE_KEY_PEM, TEST_MERCHANT_PUBLIC_KEY_PEM } from './test-merchant-key';
