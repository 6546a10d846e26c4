import { LitElement } from 'lit';

/**
 * Console elements render into the light DOM: one bundled stylesheet styles everything (no inline or
 * constructed styles for the CSP to weigh) and labels/landmarks stay visible to assistive tools. State is
 * plain fields; `update(patch)` assigns and re-renders.
 */
export class ConsoleElement extends LitElement {
  protected override createRenderRoot(): HTMLElement {
    return this;
  }

  /** Assigns the given fields (each a field the element declares) and re-renders. */
  protected set(patch: object): void {
    Object.assign(this, patch);
    this.requestUpdate();
  }
}
