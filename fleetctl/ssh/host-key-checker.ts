/**
 * Host-key verification for every SSH connection fleetctl makes: known key → accept; unknown host →
 * ask on stderr and read the answer from stdin ("yes" saves the key); changed key → refuse with
 * OpenSSH's warning. `--strict-host-key-checking=false` skips all of it.
 */
import type { Readable, Writable } from "node:stream";
import { addKnownHost, keyAlgorithmLabel, keyType, knownHostsAddress, knownKeysFor, md5Fingerprint } from "./known-hosts";

export interface HostKeyCheckerOptions {
  knownHostsFile: string;
  strict: boolean;
  stdin: Readable;
  stderr: Writable;
}

/** Why a host key was refused; the message is what the operator sees. */
export class HostKeyError extends Error {
  override readonly name = "HostKeyError";
}

/** Reads one line from a stream without consuming more than needed from a TTY-like source. */
export function readLine(stream: Readable): Promise<string> {
  return new Promise((resolve) => {
    let buf = "";
    const onData = (chunk: Buffer | string): void => {
      buf += chunk.toString();
      const nl = buf.indexOf("\n");
      if (nl !== -1) {
        done();
        // Give back what followed the answer.
        const rest = buf.slice(nl + 1);
        if (rest) stream.unshift(Buffer.from(rest));
        resolve(buf.slice(0, nl));
      }
    };
    const onEnd = (): void => {
      done();
      resolve(buf);
    };
    const done = (): void => {
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.pause();
    };
    stream.on("data", onData);
    stream.on("end", onEnd);
    stream.resume();
  });
}

function changedBanner(address: string, blob: Buffer, file: string, line: number): string {
  const algo = keyAlgorithmLabel(keyType(blob));
  return [
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
    "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
    "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!",
    "Someone could be eavesdropping on you right now (man-in-the-middle attack)!",
    `It is also possible that the ${algo} host key has just been changed.`,
    `The fingerprint for the ${algo} key sent by the remote host ${address} is`,
    `${md5Fingerprint(blob)}.`,
    "Please contact your system administrator.",
    `Add correct host key in ${file} to get rid of this message.`,
    `Offending key in ${file}:${line}`,
    `Host key verification failed for ${address}.`,
  ].join("\n");
}

/**
 * Checks the key a host presented. Resolves when accepted; rejects with HostKeyError otherwise.
 * Prompts are serialized by the caller (one connection at a time asks).
 */
export async function checkHostKey(options: HostKeyCheckerOptions, host: string, port: number, blob: Buffer): Promise<void> {
  if (!options.strict) return;
  const address = knownHostsAddress(host, port);
  const known = await knownKeysFor(options.knownHostsFile, address);
  const type = keyType(blob);
  if (known.some((k) => k.blob.equals(blob))) return;
  const sameType = known.find((k) => k.type === type) ?? known[0];
  if (sameType) throw new HostKeyError(changedBanner(address, blob, options.knownHostsFile, sameType.line));
  const algo = keyAlgorithmLabel(type);
  options.stderr.write(
    `The authenticity of host '${address}' can't be established.\n${algo} key fingerprint is ${md5Fingerprint(blob)}.\nAre you sure you want to continue connecting (yes/no)? `,
  );
  const answer = (await readLine(options.stdin)).trim().toLowerCase();
  if (answer !== "yes" && answer !== "y") throw new HostKeyError("Host key verification failed.");
  await addKnownHost(options.knownHostsFile, address, blob);
  options.stderr.write(`Warning: Permanently added '${address}' (${algo}) to the list of known hosts.\n`);
}
