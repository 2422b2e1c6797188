// Edgeway's adapter for AWS Lambda handlers written in JavaScript: appended to the user's
// handler module by build.sh, it exports the `lambda` world's `invoke` (wit/plugin.wit) and
// calls the module's handler the way AWS Lambda's Node.js runtime does:
//
//   export const handler = async (event, context) => ({ statusCode: 200, body: '...' });
//
// The event arrives as JSON text and is parsed; the handler may return a value or a promise
// (componentize-js runs the event loop until the promise settles); its result is written as
// JSON. A throw (or a rejected promise) fails the call with the error's message: behind an
// `aws-proxy-*` integration that is API Gateway's 502, from an authorizer a 500, or a 401
// when the message is exactly `Unauthorized`. Callback-style handlers (`(event, context,
// callback)`) are supported too.

export async function invoke(eventText, invocation) {
  const started = Date.now();
  const remaining = Number(invocation.remainingMs);
  const context = {
    awsRequestId: invocation.requestId,
    functionName: invocation.functionName,
    functionVersion: '$LATEST',
    memoryLimitInMB: undefined,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, remaining - (Date.now() - started)),
  };
  const fn = __EDGEWAY_HANDLER__;
  if (typeof fn !== 'function') {
    throw `the module does not export a function named ${__EDGEWAY_HANDLER_NAME__}`;
  }
  let result;
  try {
    const event = JSON.parse(eventText);
    result = fn.length >= 3
      ? await new Promise((resolve, reject) =>
          fn(event, context, (error, value) => (error ? reject(error) : resolve(value))))
      : await fn(event, context);
  } catch (error) {
    throw String(error && error.message !== undefined ? error.message : error);
  }
  return JSON.stringify(result === undefined ? null : result);
}
