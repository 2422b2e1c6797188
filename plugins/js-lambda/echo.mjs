// A Lambda-style handler of API Gateway proxy events, written as for AWS Lambda's Node.js
// runtime and built for Edgeway with plugin-sdk/lambda/js/build.sh. It behaves as the Rust
// plugins/lambda-echo does (see there), with "lang": "js".

export const handler = async (event, context) => {
  const query = event.queryStringParameters || {};
  switch (query.shape) {
    case 'binary':
      return {
        statusCode: 200,
        headers: { 'content-type': 'application/octet-stream' },
        body: 'AAEC/v8=',
        isBase64Encoded: true,
      };
    case 'bare':
      return { bare: true, lang: 'js' };
    case 'garbage':
      return { statusCode: 'soon', unexpected: true };
    case 'throw':
      throw new Error('boom');
  }
  const response = {
    statusCode: query.status ? Number(query.status) : 200,
    headers: { 'content-type': 'application/json', 'x-lang': 'js' },
    multiValueHeaders: { 'x-multi': ['one', 'two'] },
    body: JSON.stringify({
      lang: 'js',
      event,
      context: {
        awsRequestId: context.awsRequestId,
        functionName: context.functionName,
        hasTime: context.getRemainingTimeInMillis() > 0,
      },
    }),
    isBase64Encoded: false,
  };
  if (event.version === '2.0') {
    response.cookies = ['session=abc; Path=/', 'theme=dark'];
  }
  return response;
};
