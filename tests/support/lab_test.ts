/**
 * A root-only lab test: skipped with the one-line reason where the lab cannot run, the lab
 * closed afterwards whatever happens, and the agents' logs attached to a failure.
 *
 * @module
 */

import { Lab, type LabOptions, labUnavailable } from "../../testbed/lab.ts";
import { qemuUnavailable } from "../../testbed/qemu/guest_image.ts";

/** Declares a lab test named `name` on a lab from `make` (options or a factory). */
export function labTest(
  name: string,
  make: LabOptions | (() => Promise<Lab>),
  fn: (lab: Lab, t: Deno.TestContext) => Promise<void>,
): void {
  declareLabTest(name, labUnavailable(), make, fn);
}

/** A lab test that also boots QEMU guests: skipped where QEMU, busybox or a kernel is missing. */
export function qemuLabTest(
  name: string,
  make: LabOptions | (() => Promise<Lab>),
  fn: (lab: Lab, t: Deno.TestContext) => Promise<void>,
): void {
  declareLabTest(name, labUnavailable() ?? qemuUnavailable(), make, fn);
}

function declareLabTest(
  name: string,
  why: string | null,
  make: LabOptions | (() => Promise<Lab>),
  fn: (lab: Lab, t: Deno.TestContext) => Promise<void>,
): void {
  Deno.test({
    name: why ? `${name} (skipped: ${why})` : name,
    ignore: why !== null,
    // Agents, iperf3 and browsers run as child processes whose pipes outlive single steps.
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      const lab = typeof make === "function" ? await make() : await Lab.create(make);
      try {
        await fn(lab, t);
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${await lab.logs()}`);
      } finally {
        await lab.close();
      }
    },
  });
}
