/**
 * The simulator's `transaction` command (§8.9, §8.10): message flow and outcome per scenario.
 */
import type { Dialect, JpayCommand, Receipt, ResponseMap, XmlElement } from '@payorch/jpay';

import type { PhaseHold } from '../phase-hold';
import { SIM_MID, SIM_TID, type LogEntry, type LogType, type SimLedger } from './ledger';
import { scenarioOf, SIM_CARD } from './scenarios';
import { NoResponse, type Conversation } from './conversation';

type TransactionCommand = Extract<JpayCommand, { command: 'transaction' }>;

/**
 * What a transaction needs of the terminal it runs on. The simulator passes itself; naming only
 * these members keeps this module independent of simulator.ts, which imports it.
 */
export interface TransactionTerminal {
  readonly dialect: Dialect;
  readonly ledger: SimLedger;
  /** Pause between keepalives of long scenarios. */
  readonly keepaliveIntervalMs: number;
  /** Test hold: a card purchase waits at `card` before its first message. */
  readonly hold?: PhaseHold;
}
type TransactionResponse = ResponseMap['transaction'];

export interface FlowResult {
  readonly response: TransactionResponse;
  /** Sent as `plain-text-pan` only on encrypted commands (§9). */
  readonly plainTextPan?: string;
}

const respond = (status: string, receipt?: Receipt, errors: string[] = []): FlowResult => ({
  response: { command: 'transaction', status, errors, ...(receipt ? { receipt } : {}) },
});

function receiptOf(entry: LogEntry, extras: XmlElement[] = []): Receipt {
  const card = entry.iface === 'card';
  return {
    header: ['Payorch Simulator', 'Test street 1'],
    footer: ['Спасибо'],
    tid: SIM_TID,
    mid: SIM_MID,
    seq: entry.seq,
    type: entry.type,
    state: 'active',
    tstatus: entry.status,
    ...(card ? {} : { status: entry.status }),
    amountAuthorized: entry.amount,
    amountOther: entry.amountOther,
    currency: entry.currency,
    ...(card
      ? {
          aid: SIM_CARD.aid,
          psCode: '4',
          appname: SIM_CARD.name,
          apname: SIM_CARD.apnameHex,
          ictId: '05',
          alabel: SIM_CARD.alabel,
          pan: SIM_CARD.maskedPan,
          pinEntered: 'online',
        }
      : { iface: 'sbp', tidSbp: '123456789A2', bankName: 'БАНК' }),
    rrn: entry.rrn,
    respCode: entry.status === 'approved' ? '000' : '005',
    authNumber: entry.status === 'approved' ? entry.authNumber : undefined,
    datetime: entry.time,
    declineReason: entry.status === 'declined' ? 'onlinedeclined' : undefined,
    extras,
  } as Receipt;
}

/** D1 / keepalive / D4 / 03 ОДОБРЕНО: the usual card-path messages. */
async function cardMessages(conversation: Conversation, approved: boolean): Promise<void> {
  await conversation.ask({
    type: 'display',
    code: 'D1',
    language: 'ruen',
    msg: 'Подключение к банку',
  });
  await conversation.ask({ type: 'keepalive', root: 'keepalive' });
  await conversation.ask({ type: 'display', code: 'D4', language: 'ruen', msg: 'Ответ получен' });
  await conversation.ask({
    type: 'display',
    code: approved ? '03' : '07',
    language: 'ruen',
    msg: approved ? 'ОДОБРЕНО' : 'ОТКАЗАНО',
  });
}

function logTypeOf(command: TransactionCommand, original?: LogEntry): LogType {
  switch (command.type) {
    case 'void':
      return original?.type === 'refund' ? 'refundreversal' : 'purchasereversal';
    default:
      return command.type;
  }
}

async function runVoid(command: TransactionCommand, conversation: Conversation, sim: TransactionTerminal): Promise<FlowResult> {
  const original = sim.ledger.findForVoid(command.number ?? 'last');
  if (!original) return respond('transactionnotfound');
  if (original.status !== 'approved') return respond('notapproved');
  if (original.reversed) return respond('alreadyreversed');
  // §8.9: no amount = void of the whole (remaining) amount; an amount = partial void of that much.
  const left = original.amount - original.voidedAmount;
  const amount = command.amount ?? left;
  if (amount <= 0 || amount > left) return respond('invalidarguments');
  await cardMessages(conversation, true);
  original.voidedAmount += amount;
  original.reversed = original.voidedAmount === original.amount;
  const entry = sim.ledger.record({
    type: logTypeOf(command, original),
    status: 'approved',
    amount,
    currency: original.currency,
    iface: 'card',
  });
  return respond('ok', receiptOf(entry));
}

async function runSbp(command: TransactionCommand, conversation: Conversation, sim: TransactionTerminal): Promise<FlowResult> {
  const declined = scenarioOf(command.amount) === 'declined';
  if (command.type === 'purchase') {
    await conversation.ask({
      type: 'displayqrcode',
      status: 'show',
      url: `https://qr.nspk.ru/SIM${command.amount}`,
    });
    await conversation.ask({ type: 'keepalive', root: 'keepalive' });
    await conversation.ask({ type: 'displayqrcode', status: 'hide' });
  } else {
    await conversation.ask({ type: 'keepalive', root: 'keepalive' });
  }
  const entry = sim.ledger.record({
    type: command.type === 'refund' ? 'refund' : 'purchase',
    status: declined ? 'declined' : 'approved',
    amount: command.amount ?? 0,
    currency: command.currency ?? '643',
    iface: 'sbp',
  });
  return respond('ok', receiptOf(entry));
}

/** aQsi smartcard: `next` → bank card; `retry` → detect again (once); `end` → the client took the card. */
async function smartcardDetected(conversation: Conversation): Promise<'bank-card' | 'ended'> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const reply = await conversation.ask({
      type: 'smartcard',
      command: 'newcard',
      descriptor: { hex: '0705804E4B097000440028', uid: '05804E4B097000', atqa: '4400', sak: '28' },
    });
    if (reply.type === 'smartcard' && reply.command === 'end') return 'ended';
    if (!(reply.type === 'smartcard' && reply.command === 'retry')) return 'bank-card';
  }
  return 'bank-card';
}

/** JPAY MIFARE: open, then serve read/write until the client closes; returns its receipt data. */
async function mifareSession(conversation: Conversation): Promise<readonly XmlElement[] | undefined> {
  const blocks = new Map<number, string>([[0, 'AAECAwQFBgcICQoLDA0ODw==']]);
  let reply = await conversation.ask({
    type: 'card',
    code: 'open',
    blockId: 0,
    payload: blocks.get(0),
  });
  for (let step = 0; step < 64; step++) {
    if (reply.type !== 'card') return undefined;
    switch (reply.code) {
      case 'close':
        return reply.receipt ?? [];
      case 'read': {
        const payload = blocks.get(reply.blockId);
        reply = await conversation.ask({
          type: 'card',
          code: 'read',
          status: payload ? 'ok' : 'failed',
          payload,
        });
        break;
      }
      case 'write':
        blocks.set(reply.blockId, reply.payload);
        reply = await conversation.ask({ type: 'card', code: 'write', status: 'ok' });
        break;
    }
  }
  return undefined;
}

export async function runTransaction(command: TransactionCommand, conversation: Conversation, sim: TransactionTerminal): Promise<FlowResult> {
  if (command.type === 'void') return runVoid(command, conversation, sim);
  if (command.forceSbp === true) return runSbp(command, conversation, sim);
  const amount = command.amount ?? 0;
  const base = {
    type: logTypeOf(command),
    amount,
    amountOther: command.amountOther,
    currency: command.currency ?? '643',
    iface: 'card' as const,
  };
  const approve = async (extras: XmlElement[] = []): Promise<FlowResult> => {
    await cardMessages(conversation, true);
    return respond('ok', receiptOf(sim.ledger.record({ ...base, status: 'approved' }), extras));
  };

  // Waiting for the card (test hold); a connection that closes meanwhile ends it, and nothing is logged.
  if (sim.hold && !(await sim.hold.pass('card', conversation.linkGone))) throw new NoResponse('connection closed while waiting for the card');
  switch (scenarioOf(amount)) {
    case 'declined': {
      await cardMessages(conversation, false);
      return respond('ok', receiptOf(sim.ledger.record({ ...base, status: 'declined' })));
    }
    case 'tryAgain':
      await conversation.ask({ type: 'display', code: 'D2', msg: 'Повторите' });
      return respond('tryagain');
    case 'hostUnreachable':
      await conversation.ask({ type: 'display', code: 'D1', msg: 'Подключение к банку' });
      await conversation.ask({ type: 'display', code: 'D3', msg: 'Нет ответа от банка' });
      return respond('communicationerror', undefined, ['Host name is not found.']);
    case 'awaitCancel':
      for (let i = 0; i < 200; i++) {
        const reply = await conversation.ask({ type: 'keepalive', root: 'keepalive' });
        if (reply.type === 'status' && reply.status === 'cancelled') return respond('cancelled');
        await conversation.sleep(sim.keepaliveIntervalMs);
      }
      return approve();
    case 'dex': {
      const reply = await conversation.ask({
        type: 'dex',
        kernelTags: [
          { name: '5A', value: SIM_CARD.pan },
          { name: '9F02', value: String(amount).padStart(12, '0') },
        ],
      });
      const tags = reply.type === 'dex' ? reply.terminalTags : [];
      return approve(
        tags.map((t) => ({
          name: 'terminal-tag',
          attrs: { name: t.name, value: t.value },
          children: [],
          text: '',
        })),
      );
    }
    case 'unknownMessage':
      return unknownMessageFlow(conversation, approve);
    case 'contactlessCard':
      if (sim.dialect === 'aqsi') {
        return (await smartcardDetected(conversation)) === 'ended' ? respond('cancelled') : approve();
      } else {
        const userData = await mifareSession(conversation);
        return userData ? respond('ok', { header: [], footer: [], extras: [...userData] }) : respond('failed');
      }
    case 'dropAfterApproval':
      await cardMessages(conversation, true);
      sim.ledger.record({ ...base, status: 'approved' });
      conversation.drop();
      throw new NoResponse('dropped after approval');
    case 'dropBeforeApproval':
      await conversation.ask({ type: 'keepalive', root: 'keepalive' });
      conversation.drop();
      throw new NoResponse('dropped before approval');
    case 'hang':
      await cardMessages(conversation, true);
      sim.ledger.record({ ...base, status: 'approved' });
      throw new NoResponse('silent');
    case 'malformedPacket': {
      await cardMessages(conversation, true);
      sim.ledger.record({ ...base, status: 'approved' });
      const xml = Buffer.from('<transaction><status>ok</transaction>', 'utf8');
      const header = Buffer.alloc(4);
      header.writeUInt32BE(xml.length, 0);
      conversation.sendRaw(Buffer.concat([header, xml]));
      throw new NoResponse('malformed');
    }
    case 'plainTextPan': {
      const result = await approve();
      return { ...result, plainTextPan: SIM_CARD.pan };
    }
    case 'pinBypassed':
      return respond('pinentrybypassed');
    case 'qrThenCard':
      await conversation.ask({
        type: 'displayqrcode',
        status: 'show',
        url: `https://qr.nspk.ru/SIM${amount}`,
      });
      await conversation.ask({ type: 'displayqrcode', status: 'hide' });
      return approve();
    case 'qrPaid':
      // §8.10: a payment without force-sbp offers the QR while it waits for the card; paid first, it is an SBP
      // transaction. A refund without force-sbp runs by card.
      return command.type === 'purchase' ? runSbp(command, conversation, sim) : approve();
    case 'approved':
      return approve();
  }
}

async function unknownMessageFlow(conversation: Conversation, approve: () => Promise<FlowResult>): Promise<FlowResult> {
  const reply = await askUnknown(conversation);
  return reply === 'notimplemented' ? approve() : respond('failed');
}

/** Sends `<selectaid>` (a message JPAY 1.0.8 withdrew) and returns the status of the reply. */
async function askUnknown(conversation: Conversation): Promise<string | undefined> {
  const reply = await conversation.askRaw({
    name: 'selectaid',
    attrs: {},
    children: [{ name: 'aid', attrs: {}, children: [], text: SIM_CARD.aid }],
    text: '',
  });
  return reply.children.find((c) => c.name === 'status')?.text.trim();
}
