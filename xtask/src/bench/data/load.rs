//! Bulk loading of synthetic tasks with SQL, `INSERT … SELECT generate_series`.
//!
//! Creating 100 000 tasks over REST would take minutes and fill the outbox; what is measured
//! is reading, so the rows go straight into the tables the backend reads. Every value derives
//! from the row number `g`, so a load is the same on every run and loads of consecutive ranges
//! add up (the sizes are cumulative). Ids are `md5(owner:g)` as a UUID, so a task's tags can be
//! attached by recomputing its id.

/// Labels each user has; tasks carry 0 to 2 of them.
pub(super) const TAGS_PER_USER: u32 = 20;

/// Whose tasks a load creates.
#[derive(Clone, Debug)]
pub(super) enum Owners {
    /// All rows belong to this user.
    One(String),
    /// Rows go round-robin to `count` users named `prefix` + a zero-padded number.
    Many { prefix: String, count: u32 },
}

impl Owners {
    /// The name of the user numbered by the SQL expression `index`.
    fn name_sql(&self, index: &str) -> String {
        match self {
            Self::One(user) => quote(user),
            Self::Many { prefix, .. } => {
                format!("{} || lpad(({index})::text, 4, '0')", quote(prefix))
            }
        }
    }

    /// The owner of row `g` of the load of rows `first..end`, as SQL. Many users get one block
    /// of consecutive rows each, not every n-th row: the values derive from `g`, so a stride
    /// would give a user only tasks of one title, or never a tag.
    fn owner_sql(&self, first: u64, end: u64) -> String {
        let rows = end.saturating_sub(first).max(1);
        self.name_sql(&format!("(g - {first}) * {} / {rows}", self.count()))
    }

    /// The name of the `n`-th user of [`Owners::Many`] (or the one user).
    pub(super) fn user(&self, n: u32) -> String {
        match self {
            Self::One(user) => user.clone(),
            Self::Many { prefix, .. } => format!("{prefix}{n:04}"),
        }
    }

    fn count(&self) -> u32 {
        match self {
            Self::One(_) => 1,
            Self::Many { count, .. } => (*count).max(1),
        }
    }
}

/// A string literal for SQL. The names are ours, but quoting keeps the SQL valid for any.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The users and their tags (idempotent: a second call adds nothing).
pub(super) fn users_sql(owners: &Owners) -> String {
    let count = owners.count();
    let user = owners.name_sql("g");
    format!(
        "INSERT INTO users (id, email) \
           SELECT u, u || '@example.test' FROM (SELECT {user} AS u FROM generate_series(0, {last}) g) s \
           ON CONFLICT DO NOTHING; \
         INSERT INTO tags (id, user_id, name) \
           SELECT md5(u || ':tag:' || n)::uuid, u, 'tag-' || n \
           FROM (SELECT {user} AS u FROM generate_series(0, {last}) g) s, \
                generate_series(0, {tags_last}) n \
           ON CONFLICT DO NOTHING;",
        last = count - 1,
        tags_last = TAGS_PER_USER - 1,
    )
}

/// The id of tag `n` of `user`, as the loader makes it (for the tag filter's request).
pub(super) fn tag_id_sql(user: &str, n: u32) -> String {
    format!("SELECT md5({} || ':tag:' || {n})::uuid", quote(user))
}

/// Tasks `first..end` (row numbers) and their tags.
///
/// The mix, per row number: a third completed; a quarter each low/medium/high/urgent (spread
/// by a multiplier, so neighbours differ); 30 % without a due date, the rest due from 100 days
/// ago to 300 days ahead; titles from 10 verbs × 12 objects (so a search word matches one row
/// in 12, the way a real word matches some tasks, not all); descriptions of 0 to 60 words; a
/// quarter of the tasks carry one tag and another tenth a different one. Newer rows were created later,
/// one minute apart.
pub(super) fn tasks_sql(owners: &Owners, first: u64, end: u64) -> String {
    let user = owners.owner_sql(first, end);
    let last = end.saturating_sub(1);
    format!(
        "INSERT INTO tasks (id, user_id, title, description, completed, completed_at, priority, \
                            due_at, created_at, updated_at) \
         SELECT md5(u || ':' || g)::uuid, u, \
                (ARRAY['Pay','Call','Write','Review','Buy','Fix','Plan','Book','Send','Clean'])[1 + g % 10] \
                  || ' ' || \
                (ARRAY['invoice','dentist','report','groceries','car','meeting','flights', \
                       'birthday card','garage','taxes','newsletter','budget'])[1 + (g / 10) % 12] \
                  || ' ' || g, \
                repeat((ARRAY['remember the receipt ','ask about the deadline ', \
                              'check the calendar first ','see the notes from last week '])[1 + g % 4], \
                       (g % 16)::int), \
                g % 3 = 0, \
                CASE WHEN g % 3 = 0 THEN created END, \
                (ARRAY['low','medium','high','urgent'])[1 + (g * 7 / 3) % 4], \
                CASE WHEN g % 10 < 3 THEN NULL \
                     ELSE now() + ((g * 37) % 400 - 100) * interval '1 day' END, \
                created, created \
         FROM (SELECT g, {user} AS u, \
                      timestamptz '2026-01-01' + g * interval '1 minute' AS created \
               FROM generate_series({first}, {last}) g) s; \
         INSERT INTO task_tags (task_id, tag_id) \
         SELECT md5(u || ':' || g)::uuid, md5(u || ':tag:' || ((g / 4) % {TAGS_PER_USER}))::uuid \
         FROM (SELECT g, {user} AS u FROM generate_series({first}, {last}) g) s \
         WHERE g % 4 = 0 \
         UNION ALL \
         SELECT md5(u || ':' || g)::uuid, md5(u || ':tag:' || ((g / 10 + 7) % {TAGS_PER_USER}))::uuid \
         FROM (SELECT g, {user} AS u FROM generate_series({first}, {last}) g) s \
         WHERE g % 10 = 5 \
         ON CONFLICT DO NOTHING;"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_name_users_the_way_the_sql_does() {
        let many = Owners::Many {
            prefix: "bench-many-".into(),
            count: 1000,
        };
        assert_eq!(many.user(42), "bench-many-0042");
        assert_eq!(
            many.owner_sql(0, 100_000),
            "'bench-many-' || lpad(((g - 0) * 1000 / 100000)::text, 4, '0')"
        );
        assert_eq!(Owners::One("o'brien".into()).owner_sql(0, 5), "'o''brien'");
    }

    #[test]
    fn task_ranges_are_half_open() {
        let sql = tasks_sql(&Owners::One("u".into()), 1000, 10_000);
        assert!(sql.contains("generate_series(1000, 9999)"), "{sql}");
    }
}
