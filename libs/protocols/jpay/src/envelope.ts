/**
 * Encrypted envelope, §9: "Зашифрованные команды, сообщения и ответы сохраняют свои корневые теги ...
 * но все вложенные теги заменяются на тег encrypted", whose value is the encrypted
 * `<encrypted-data>…</encrypted-data>` block (UTF-8).
 *  - [JPAY-9-ENV]   the root keeps its name and attributes in clear (`client-handshake`,
 *                   `server-handshake`, `force-sbp`); only child elements are encrypted;
 *  - [JPAY-9-INNER] the decrypted block must be one well-formed `<encrypted-data>` element;
 *  - [JPAY-9-MIRROR] "для зашифрованной команды они так же передаются зашифрованными": the answer to an
 *                   encrypted command must come encrypted. Only the children are authenticated (GCM, no
 *                   AAD, JPAY_CRYPTO_ASSUMPTIONS) — the clear root name and attributes are not — so a
 *                   clear answer proves nothing about what the application did with the command.
 */
import type { JpaySessionKey } from './crypto';
import { JpayError } from './errors';
import { child, el, parseXmlBytes, writeXmlBytes, type XmlElement } from './xml';

export function isSealed(root: XmlElement): boolean {
  return child(root, 'encrypted') !== undefined;
}

/** [JPAY-9-ENV] `<root attrs><encrypted>…</encrypted></root>`. */
export function sealElement(root: XmlElement, key: JpaySessionKey, iv?: Uint8Array): XmlElement {
  const inner = writeXmlBytes(el('encrypted-data', root.children));
  return el(root.name, [el('encrypted', key.encrypt(inner, iv))], root.attrs);
}

/**
 * [JPAY-9-INNER] Returns the element with its decrypted children; a clear element is returned as is,
 * unless `requireSealed` ([JPAY-9-MIRROR]: the answer to an encrypted command), which refuses it.
 */
export function openElement(root: XmlElement, key: JpaySessionKey | undefined, options: { requireSealed?: boolean } = {}): XmlElement {
  const encrypted = child(root, 'encrypted');
  if (!encrypted) {
    if (options.requireSealed) {
      throw new JpayError('ENCRYPTION_MISMATCH', 'clear answer to an encrypted command [JPAY-9-MIRROR]', { field: root.name });
    }
    return root;
  }
  if (!key) {
    throw new JpayError('ENCRYPTION_MISMATCH', 'encrypted packet without a secure session [JPAY-9-ENV]', {
      field: root.name,
    });
  }
  const inner = parseXmlBytes(key.decrypt(encrypted.text));
  if (inner.name !== 'encrypted-data') {
    throw new JpayError('DECRYPT_FAILED', 'decrypted block is not <encrypted-data> [JPAY-9-INNER]');
  }
  return { name: root.name, attrs: root.attrs, children: inner.children, text: '' };
}
