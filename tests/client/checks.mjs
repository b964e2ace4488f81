// Shared by the client scripts: a named check that exits non-zero when it
// fails, and an assertion that a call is refused with a status (and code).
import assert from 'node:assert/strict';

export function checker(version) {
  return async function check(name, body) {
    try {
      await body();
    } catch (error) {
      console.error(`FAILED ${name} (client ${version}):`, error);
      process.exit(1);
    }
  };
}

export async function rejects(promise, status, code) {
  try {
    await promise;
  } catch (error) {
    assert.equal(error.httpStatus, status, `status of: ${error.message}`);
    if (code) assert.equal(error.code, code, error.message);
    assert.ok(error.message.length > 15, `a clear message: ${error.message}`);
    return error;
  }
  assert.fail(`expected HTTP ${status}`);
}
