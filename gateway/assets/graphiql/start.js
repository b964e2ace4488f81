// Starts GraphiQL on this server's GraphQL endpoint (queries and mutations
// over HTTP). A server whose app declares permissions needs a token: sign in
// (POST /api/v1/auth/sign-in/email) and put {"Authorization": "Bearer <token>"}
// in the Headers tab below the editor.
const fetcher = GraphiQL.createFetcher({ url: new URL('/api/v1/graphql', window.location.origin).toString() });
ReactDOM.createRoot(document.getElementById('graphiql')).render(
  React.createElement(GraphiQL, { fetcher, defaultEditorToolsVisibility: true, isHeadersEditorEnabled: true, shouldPersistHeaders: true }),
);
