/**
 * Opens the device the configuration asks for: a new TAP device (optionally enslaved to an
 * existing bridge) or an existing interface through libpcap, waited for the way `deviceWait`
 * says (one {@linkcode DeviceWait} built here and handed to the device).
 *
 * @module
 */

import type { Config } from "../config/schema.ts";
import { parseMac, writeMac } from "../switch/ethernet.ts";
import { addToBridge } from "../../ffi/bridge.ts";
import { logger } from "../log.ts";
import type { Device } from "./device.ts";
import { DeviceWait } from "./device_wait.ts";
import { PcapDevice } from "./pcap_device.ts";
import { TapDevice } from "./tap_device.ts";

/** Default TAP name when `--tap` is not given. */
export const DEFAULT_TAP_NAME = "vnet0";

/** Opens the device of `config` (`--pcap IFACE`, else `--tap NAME`, default vnet0). */
export function openConfiguredDevice(config: Config): Device {
  const wait = new DeviceWait(config.deviceWait);
  // Started now so that a fallback is reported once, at start-up, with its reason.
  wait.start().then((reason) => {
    if (reason === null) return;
    logger("device").warn("Waiting for the device on a worker thread (slower): {reason}", {
      reason,
    });
  });
  if (config.pcap) return PcapDevice.open({ iface: config.pcap, mtu: config.mtu, wait });
  let mac: Uint8Array | undefined;
  if (config.mac) {
    mac = new Uint8Array(6);
    writeMac(mac, 0, parseMac(config.mac));
  }
  const device = TapDevice.open({
    name: config.tap ?? DEFAULT_TAP_NAME,
    mtu: config.mtu,
    mac,
    offload: config.offload,
    wait,
  });
  if (config.bridge) {
    try {
      addToBridge(config.bridge, device.name);
    } catch (e) {
      device.close();
      throw e;
    }
  }
  return device;
}
