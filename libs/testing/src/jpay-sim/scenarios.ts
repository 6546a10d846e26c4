/**
 * Deterministic outcome scenarios of the simulator, chosen by the kopecks of the transaction amount
 * (`amount % 100`). The table is mirrored in README.md.
 */
export const SCENARIOS = {
  /** 00–49 and anything not listed: approved after D1 / keepalive / D4 / "ОДОБРЕНО". */
  approved: 0,
  /** tstatus=declined, decline-reason=onlinedeclined, logged as declined. */
  declined: 51,
  /** status=tryagain, nothing logged. */
  tryAgain: 52,
  /** status=communicationerror with error-stack "Host name is not found.". */
  hostUnreachable: 53,
  /** keepalive every `keepaliveIntervalMs` (up to 200): `cancelled` → status cancelled; else approved. */
  awaitCancel: 54,
  /** dex message (kernel tags 5A, 9F02); the client's terminal tags are echoed as receipt extras. */
  dex: 55,
  /** an unknown message `<selectaid>`: a reply other than notimplemented fails the transaction. */
  unknownMessage: 56,
  /** card detection: aqsi → smartcard newcard; jpay → MIFARE card open/read/write/close. */
  contactlessCard: 57,
  /** approved and logged, then the connection is dropped before the response. */
  dropAfterApproval: 58,
  /** a keepalive, then the connection is dropped; nothing logged. */
  dropBeforeApproval: 59,
  /** approved and logged, then silence (the client times out). */
  hang: 60,
  /** a malformed XML packet instead of the response (approved and logged). */
  malformedPacket: 61,
  /** approved; on an encrypted command the receipt carries `plain-text-pan`. */
  plainTextPan: 62,
  /** status=pinentrybypassed. */
  pinBypassed: 63,
  /** without force-sbp: QR shown, then a card is detected: QR hidden, card payment approved. */
  qrThenCard: 64,
  /** without force-sbp: QR shown and paid before a card is detected (§8.10): an SBP purchase (SBP receipt counter). */
  qrPaid: 65,
} as const;

export type ScenarioName = keyof typeof SCENARIOS;

export function scenarioOf(amount: number | undefined): ScenarioName {
  const kopecks = (amount ?? 0) % 100;
  const found = (Object.keys(SCENARIOS) as ScenarioName[]).find((name) => SCENARIOS[name] === kopecks && name !== 'approved');
  return found ?? 'approved';
}

/** The card the simulator "reads": a Visa test PAN. */
export const SIM_CARD = {
  pan: '4111111111111111',
  maskedPan: '************1111',
  aid: 'A0000000031010',
  rid: 'A000000003',
  name: 'VISA',
  /** "VISA ДЕБЕТ" in ISO 8859-5, HEX-ASCII, with ict-id 05. */
  apnameHex: '5649534120B4B5B1B5C2',
  alabel: 'VISA DEBIT',
} as const;
