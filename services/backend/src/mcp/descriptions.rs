//! What the assistant reads: the server instructions and each tool's description, including
//! the natural-language guide (phrases → RRULEs, reminder offsets, priorities, time formats).
//!
//! The texts are `macro_rules!` fragments joined with `concat!` so shared guidance is written
//! once and every description is still one `&'static str`.

/// How to write times.
macro_rules! time_guide {
    () => {
        "Times: ISO-8601 with a UTC offset, e.g. \"2025-06-01T17:00:00+02:00\" or \
\"2025-06-01T15:00:00Z\". Resolve relative phrases (\"tomorrow at 5pm\", \"next friday\", \"in 2 \
hours\") against the user's current date, time and time zone first. A day without a time: use \
09:00 local for things to do that day, 23:59 local for deadlines (\"by friday\"). Results are in \
UTC. Accepted: years 1970 to 9999.\n"
    };
}

/// How phrases map to RRULEs.
macro_rules! rrule_guide {
    () => {
        "Recurrence: recurrence_rule is an RFC 5545 RRULE without DTSTART — the series starts at \
due_date, so a recurring task needs a due_date. Completing a recurring task creates its next \
occurrence. Supported: FREQ=DAILY|WEEKLY|MONTHLY|YEARLY with INTERVAL (1-1000), BYDAY (WEEKLY: \
MO,TU,WE,TH,FR,SA,SU; MONTHLY: ordinal + day such as 1MO, 2TU, -1FR), BYMONTHDAY (MONTHLY: 1-31, \
-1 = last day), and COUNT or UNTIL (not both). Phrase → rule:\n\
- \"every day\", \"daily\" → FREQ=DAILY\n\
- \"every 3 days\" → FREQ=DAILY;INTERVAL=3\n\
- \"every weekday\", \"monday to friday\" → FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR\n\
- \"every weekend\" → FREQ=WEEKLY;BYDAY=SA,SU\n\
- \"every week\", \"weekly\" → FREQ=WEEKLY (on due_date's weekday)\n\
- \"every monday and friday\" → FREQ=WEEKLY;BYDAY=MO,FR\n\
- \"every other week\", \"biweekly\", \"every 2 weeks\" → FREQ=WEEKLY;INTERVAL=2\n\
- \"every month\", \"monthly\" → FREQ=MONTHLY (on due_date's day of month)\n\
- \"monthly on the 15th\" → FREQ=MONTHLY;BYMONTHDAY=15\n\
- \"on the last day of every month\" → FREQ=MONTHLY;BYMONTHDAY=-1\n\
- \"first monday of the month\" → FREQ=MONTHLY;BYDAY=1MO\n\
- \"every second and fourth tuesday\" → FREQ=MONTHLY;BYDAY=2TU,4TU\n\
- \"last friday of the month\" → FREQ=MONTHLY;BYDAY=-1FR\n\
- \"every quarter\" → FREQ=MONTHLY;INTERVAL=3\n\
- \"every year\", \"annually\", \"every birthday\" → FREQ=YEARLY (on due_date's day)\n\
- \"10 times\" → append COUNT=10, e.g. FREQ=DAILY;COUNT=10\n\
- \"until the end of June 2025\" → append UNTIL=20250630T235959Z (UTC) or UNTIL=20250630\n\
Not supported: hourly or minutely rules, BYHOUR, BYSETPOS, BYMONTH, EXDATE — offer the closest \
supported rule instead. An unsupported or malformed rule is a VALIDATION_ERROR naming what is \
supported.\n"
    };
}

/// How phrases map to priorities.
macro_rules! priority_guide {
    () => {
        "Priority: \"urgent\", \"asap\", \"critical\" → urgent; \"important\", \"high priority\" → \
high; \"low priority\", \"someday\", \"whenever\", \"no rush\" → low; otherwise medium (the \
default).\n"
    };
}

/// Instructions sent to the client when it connects.
pub(super) const INSTRUCTIONS: &str = "Task manager for the signed-in user: tasks with \
priorities, due dates, reminders and recurrence, grouped by categories and labelled with tags. \
The user is identified by the access token: no tool takes a user id, and every tool sees only \
this user's data. Ids are UUIDs returned by the tools (an integer id from before the move to \
this system still names the same task, category or tag); when the user names a task, category \
or tag, look its id up (search_tasks, list_tasks, list_categories, list_tags) instead of \
guessing. \
Times are ISO-8601 with a UTC offset. A failed call returns isError=true with JSON \
{code, message, field?, suggestions}: TASK_NOT_FOUND (suggestions = the user's recent pending \
tasks), NOT_FOUND (category or tag), VALIDATION_ERROR (fix the named field), CONFLICT (the name \
exists already), LIMIT_EXCEEDED (10 tags per task, 50 categories per user), INTERNAL (try again \
later).";

pub(super) const ADD_TASK: &str = concat!(
    "Create a task for the signed-in user and return it (with its id). Only title is required. \
Limits: title 1-200 characters, one line; at most 10 tag_ids; category_id and tag_ids must be \
the user's existing category and tags (find them with list_categories / list_tags, or create \
them first with create_category / create_tag). For a relative reminder (\"remind me a day \
before\") create the task with a due_date, then call set_reminder.\n",
    time_guide!(),
    priority_guide!(),
    rrule_guide!(),
);

pub(super) const LIST_TASKS: &str = concat!(
    "List the user's tasks, filtered, sorted and paged. Returns {items, total, total_exact, \
limit, offset}; when total > offset + limit, ask for the next page with offset = offset + limit \
(total_exact false: at least total match, counting stopped 1000 past the page). All filters \
combine with AND; tag_ids matches tasks carrying any of the given tags. Phrase → arguments:\n\
- \"what's left\", \"open\", \"to do\" → status=pending\n\
- \"done\", \"finished\" → status=completed\n\
- \"overdue\" → status=pending, due_before=<now>\n\
- \"due today\" → due_after=<start of today>, due_before=<start of tomorrow> (user's zone, \
with offset)\n\
- \"due this week\" → due_after=<start of this week>, due_before=<start of next week>\n\
- \"urgent tasks\" → priority=urgent; \"work tasks\" → category_id of the Work category\n\
- \"by deadline\", \"what's due next\" → sort_by=due_date; \"most important first\" → \
sort_by=priority; default sort_by=created_at (newest first)\n",
    time_guide!(),
);

pub(super) const GET_TASK: &str = "Get one task by id, with its category, tags, due date \
(due_at), reminder (remind_at), recurrence rule and completion state. An unknown id — or one \
belonging to someone else — answers TASK_NOT_FOUND with up to 5 of the user's most recent \
pending tasks as suggestions.";

pub(super) const UPDATE_TASK: &str = concat!(
    "Change some fields of a task and return the updated task. Only the fields given change; \
null or an omitted field leaves the value as it is. To remove a value pass an empty string: \
category_id=\"\" (no category), due_date=\"\" (no due date), recurrence_rule=\"\" (stop \
repeating), remind_at=\"\" (cancel the reminder). A recurring task always needs a due_date: \
to remove the due date of one, stop it repeating in the same call; to make a task without one \
repeat, give due_date with recurrence_rule. completed=false reopens a done task; to mark a \
task done prefer complete_task. Tags are changed with add_tag_to_task / remove_tag_from_task; \
for a reminder relative to the due date use set_reminder. Same limits as add_task (title 1-200 \
characters). recurrence_rule uses the RRULE subset described in add_task (e.g. \"every \
weekday\" → FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR).\n",
    time_guide!(),
    priority_guide!(),
);

pub(super) const DELETE_TASK: &str = "Delete a task permanently (its reminder and tag links go \
with it; categories and tags themselves stay). If the user's wording could match several \
tasks, confirm which one first. Returns {deleted: true, task_id}. For finished work use \
complete_task instead, which keeps the history.";

pub(super) const COMPLETE_TASK: &str = "Mark a task done (\"I finished X\", \"check off X\", \
\"done with X\") and return it with completed_at. For a recurring task the next occurrence is \
created automatically from its rule. When the user names the task by title, find its id with \
search_tasks or list_tasks (status=pending) first.";

pub(super) const CREATE_CATEGORY: &str = "Create a category — a grouping such as Work, Personal \
or Shopping; each task has at most one. name: 1-50 characters, unique per user ignoring case (a \
duplicate answers CONFLICT: use list_categories to find the existing one). color: optional \
\"#RRGGBB\" hex colour, e.g. \"#FF5733\" (red \"#FF0000\", green \"#00AA00\", blue \
\"#0066FF\"). A user has at most 50 categories (LIMIT_EXCEEDED). Returns the category with its \
id.";

pub(super) const LIST_CATEGORIES: &str = "List the user's categories, each with its task_count. \
Returns {categories: [...]}. Use it to turn a category name the user says into a category_id.";

pub(super) const UPDATE_CATEGORY: &str = "Rename or recolour a category and return it. Only the \
fields given change. name: 1-50 characters, unique per user ignoring case (CONFLICT otherwise). \
color: \"#RRGGBB\", or \"\" to remove the colour.";

pub(super) const DELETE_CATEGORY: &str = "Delete a category. Its tasks are kept; they simply \
no longer have a category. Returns {deleted: true, category_id}.";

pub(super) const CREATE_TAG: &str = "Create a tag — a label such as \"errands\" or \"waiting\"; \
a task can carry up to 10. name: 1-30 characters, unique per user ignoring case (a duplicate \
answers CONFLICT: use list_tags to find the existing one). color: optional \"#RRGGBB\". Returns \
the tag with its id; attach it with add_tag_to_task, or pass the id in add_task's tag_ids.";

pub(super) const LIST_TAGS: &str = "List the user's tags, each with its task_count. Returns \
{tags: [...]}. Use it to turn a tag name the user says into a tag_id.";

pub(super) const UPDATE_TAG: &str = "Rename or recolour a tag and return it. Only the fields \
given change. name: 1-30 characters, unique per user ignoring case (CONFLICT otherwise). color: \
\"#RRGGBB\", or \"\" to remove the colour.";

pub(super) const DELETE_TAG: &str = "Delete a tag; it is removed from every task that carried \
it (the tasks stay). Returns {deleted: true, tag_id}.";

pub(super) const ADD_TAG_TO_TASK: &str = "Attach one of the user's tags to a task and return \
the updated task (attaching a tag the task already has changes nothing). A task carries at \
most 10 tags (LIMIT_EXCEEDED). To attach a tag that does not exist yet, create_tag first.";

pub(super) const REMOVE_TAG_FROM_TASK: &str = "Detach a tag from a task and return the updated \
task. The tag itself stays (delete_tag removes it everywhere).";

pub(super) const SEARCH_TASKS: &str = "Full-text search over the titles and descriptions of \
the user's tasks, best matches first (\"find my task about the dentist\" → query=\"dentist\"). \
Returns {items, total, total_exact, limit, offset}. query: 1-200 characters. Optional filters narrow the \
matches: priority (\"low\", \"medium\", \"high\", \"urgent\"), category_id (from \
list_categories), tag_ids (tasks carrying at least one of them, from list_tags). Page with \
limit (default 50, at most 200) and offset. To filter by completion or due dates without \
search words, use list_tasks.";

pub(super) const SET_REMINDER: &str = concat!(
    "Set or replace the reminder of a task and return the updated task (with remind_at). Give \
exactly one of:\n\
- remind_before_minutes, relative to the task's due date (the task must have one): \"15 \
minutes before\" → 15, \"half an hour before\" → 30, \"an hour before\" → 60, \"2 hours \
before\" → 120, \"one day before\", \"the day before\" → 1440, \"two days before\" → 2880, \"a \
week before\" → 10080;\n\
- remind_at, an absolute time (\"remind me tomorrow at 9am\").\n\
Giving both or neither is a VALIDATION_ERROR. The reminder must be in the future and not after \
the due date. To cancel a reminder use update_task with remind_at=\"\".\n",
    time_guide!(),
);
