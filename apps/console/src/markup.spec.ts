import { describe, expect, it, jest } from '@jest/globals';

/**
 * The console's one escaping mechanism is Lit's bindings: a value goes into a text node or an attribute value,
 * never through the HTML parser. Tenant, terminal and receiver text reach every page (names, response
 * messages, receipts, webhook answers), so nothing may parse a value as markup or take a whole URL from data.
 * The gateway's Trusted Types CSP refuses raw `innerHTML` strings at run time, but not Lit's own escape hatches
 * (`unsafeHTML` goes through Lit's policy): this keeps all of them out of the source. A URL attribute always starts
 * with a literal (`href="#/terminals/${id}"`), so data can never make it `javascript:`.
 */
const RAW_MARKUP: readonly [RegExp, string][] = [
  [/\bunsafe(?:HTML|SVG|MathML|Static)\b|lit\/static-html/, "Lit's raw-markup directives"],
  [
    /\.(?:inner|outer)HTML\b|\binsertAdjacentHTML\b|\bdocument\.write|\bcreateContextualFragment\b|\bDOMParser\b|\b(?:set|parse)HTMLUnsafe\b/,
    'a DOM HTML parser',
  ],
  [/\bsrcdoc\b/, 'an iframe document from a string'],
  [/\b(?:href|src|action|formaction)=["']?\$\{/, 'a URL attribute taken whole from a value'],
];

/** What a source breaks of the rule (comments left out), as `file:line: what`. */
function rawMarkupUses(file: string, source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/(^|[^:])\/\/.*$/gm, '$1');
  return code.split('\n').flatMap((line, i) => RAW_MARKUP.filter(([re]) => re.test(line)).map(([, what]) => `${file}:${i + 1}: ${what}`));
}

interface Fs {
  readdirSync(dir: string, options: { recursive: true }): string[];
  readFileSync(file: string, encoding: 'utf8'): string;
}

describe('console markup', () => {
  it('recognises each way of parsing a value as markup', () => {
    const samples = [
      'html`<p>${unsafeHTML(t.name)}</p>`',
      "import { html } from 'lit/static-html.js';",
      'el.innerHTML = receipt;',
      'html`<div .innerHTML=${text}></div>`',
      "main.insertAdjacentHTML('beforeend', s);",
      'document.write(s);',
      'html`<a href=${webhook.url}>hook</a>`',
      'html`<a href="${webhook.url}">hook</a>`',
      'html`<iframe srcdoc=${page}></iframe>`',
    ];
    expect(samples.map((s) => rawMarkupUses('x.ts', s).length)).toEqual(samples.map(() => 1));
    expect(rawMarkupUses('x.ts', 'html`<a href="#/terminals/${t.id}">${t.name}</a> <span title=${t.name}></span>` // not .innerHTML')).toEqual([]);
  });

  it('is never done in the console: every value renders through a Lit binding', () => {
    const fs = jest.requireActual<Fs>('node:fs');
    const dir = expect.getState().testPath!.replace(/[/\\][^/\\]+$/, '');
    const files = fs.readdirSync(dir, { recursive: true }).filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'));
    expect(files).toEqual(expect.arrayContaining(['app.ts', 'pages/fleet.ts', 'components/operation-card.ts']));
    expect(files.flatMap((f) => rawMarkupUses(f, fs.readFileSync(`${dir}/${f}`, 'utf8')))).toEqual([]);
  });
});
