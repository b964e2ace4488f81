// Access: what the signed-in user may do, and (for those who manage users)
// the users, whose profile, permission sets and roles are edited on the
// user record like any other record.

import { get } from "../api.js";
import { errorBox, fill, h, show } from "../dom.js";

export async function render(main, _params, me) {
  const sections = [h("h1", {}, "Access"), h("p", {}, "Signed in as ", h("strong", {}, me.user.email), ` (profile ${me.user.profile ?? "none"}).`)];
  try {
    const effective = await get("/api/v1/auth/permissions/effective");
    sections.push(h("h2", {}, "Your permissions"), h("pre", { id: "effective" }, JSON.stringify(effective, null, 2)));
  } catch (error) {
    sections.push(errorBox(error));
  }
  try {
    const users = await get("/api/v1/data/user?top=200&sort=name");
    sections.push(h("h2", {}, "Users"),
      h("table", { id: "users" },
        h("thead", {}, h("tr", {}, ["Name", "Email", "Profile", "Permission sets", "Roles", "Active"].map((t) => h("th", {}, t)))),
        h("tbody", {}, users.records.map((u) => h("tr", {},
          h("td", {}, h("a", { href: `#/o/user/${u.id}` }, u.name ?? u.id)), h("td", {}, u.email ?? ""), h("td", {}, u.profile ?? ""),
          h("td", {}, show(u.permission_sets)), h("td", {}, show(u.roles)), h("td", {}, show(u.active)))))));
  } catch (error) {
    if (error.status !== 403 && error.status !== 404) sections.push(errorBox(error));
  }
  fill(main, sections);
}
