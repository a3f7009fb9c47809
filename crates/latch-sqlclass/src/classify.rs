//! `classify`: parses a query text with sqlparser's PostgreSQL dialect and walks every
//! statement, nested ones included, raising the class as it meets what a statement does.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    AlterFunctionOperation, AlterSchemaOperation, AlterTableOperation, AlterViewOperation,
    CopySource, CopyTarget, DiscardObject, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    GrantObjects, Grantee, GranteeName, Ident, ObjectName, ObjectNamePart, Owner, Query, Reset,
    SchemaName, Select, Set, Statement, TransactionAccessMode, TransactionMode, Value, Visit,
    Visitor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::class::{Classified, StatementClass};
use crate::lex::{self, Kind};

/// Functions whose call changes data or state outside the statement, so that a `SELECT` calling
/// them is a write. Compared with the last part of the called name, lowercased.
const WRITE_FUNCTIONS: &[&str] = &[
    // sequences
    "nextval",
    "setval",
    // advisory locks
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_advisory_xact_lock",
    "pg_advisory_xact_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
    "pg_try_advisory_xact_lock",
    "pg_try_advisory_xact_lock_shared",
    "pg_advisory_unlock",
    "pg_advisory_unlock_shared",
    "pg_advisory_unlock_all",
    // notifications
    "pg_notify",
    // large objects
    "lo_create",
    "lo_creat",
    "lo_import",
    "lo_export",
    "lo_unlink",
    "lo_put",
    "lo_from_bytea",
    "lo_truncate",
    "lo_truncate64",
    "lowrite",
    // other sessions and the server
    "pg_cancel_backend",
    "pg_terminate_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_promote",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_backup_start",
    "pg_backup_stop",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_wal_replay_pause",
    "pg_wal_replay_resume",
    "pg_log_backend_memory_contexts",
    "pg_import_system_collations",
    // replication
    "pg_create_physical_replication_slot",
    "pg_create_logical_replication_slot",
    "pg_copy_physical_replication_slot",
    "pg_copy_logical_replication_slot",
    "pg_drop_replication_slot",
    "pg_replication_slot_advance",
    "pg_logical_slot_get_changes",
    "pg_logical_slot_get_binary_changes",
    "pg_logical_emit_message",
    "pg_replication_origin_create",
    "pg_replication_origin_drop",
    "pg_replication_origin_advance",
    // statistics
    "pg_stat_reset",
    "pg_stat_reset_shared",
    "pg_stat_reset_single_table_counters",
    "pg_stat_reset_single_function_counters",
    "pg_stat_reset_slru",
    "pg_stat_reset_replication_slot",
    "pg_stat_statements_reset",
    // files (adminpack)
    "pg_file_write",
    "pg_file_rename",
    "pg_file_unlink",
    "pg_file_sync",
    // functions that run a query given as text
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "dblink",
    "dblink_exec",
    "dblink_send_query",
    "dblink_open",
];

/// Settings that change the acting role or would lift a read-only session.
const GUARDED_SETTINGS: &[&str] = &[
    "role",
    "session_authorization",
    "default_transaction_read_only",
    "transaction_read_only",
];

/// Of the guarded settings, those that are harmless when set to a true value.
const READ_ONLY_SETTINGS: &[&str] = &["default_transaction_read_only", "transaction_read_only"];

/// Classifies one query text, which may hold several statements (the simple protocol sends
/// `BEGIN; INSERT …; COMMIT` as one text).
///
/// The class is the most severe of its statements; see the crate documentation for the table.
/// Never panics; a text sqlparser cannot parse is split at its top-level `;` and each part is
/// classified on its own, the parts that still do not parse being `Unparsed`.
pub fn classify(sql: &str) -> Classified {
    let dialect = PostgreSqlDialect {};
    let mut walk = Walk::default();
    let statements = match Parser::parse_sql(&dialect, sql) {
        Ok(statements) => {
            for statement in &statements {
                walk.top_level(statement);
            }
            statements.len()
        }
        Err(_) => {
            let mut count = 0;
            for part in split_statements(sql) {
                count += 1;
                match Parser::parse_sql(&dialect, part) {
                    Ok(statements) => {
                        for statement in &statements {
                            walk.top_level(statement);
                        }
                    }
                    Err(_) => walk.raise(StatementClass::Unparsed),
                }
            }
            count
        }
    };
    walk.finish(statements)
}

/// The non-empty statements of `sql`, split at its top-level `;` (a part holding only spaces
/// and comments is dropped).
fn split_statements(sql: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut has_code = false;
    for span in lex::lex(sql) {
        match span.kind {
            Kind::Semicolon => {
                if has_code {
                    parts.push(sql.get(start..span.start).unwrap_or_default());
                }
                start = span.end;
                has_code = false;
            }
            Kind::Comment => {}
            Kind::Literal => has_code = true,
            Kind::Code => {
                has_code |= sql
                    .get(span.start..span.end)
                    .is_some_and(|code| !code.trim().is_empty());
            }
        }
    }
    if has_code {
        parts.push(sql.get(start..).unwrap_or_default());
    }
    parts
}

/// The state of the walk over a text's statements.
#[derive(Default)]
struct Walk {
    class: Option<StatementClass>,
    objects: BTreeSet<String>,
    /// Names of common table expressions: a one-part relation with such a name is the CTE,
    /// not an object.
    ctes: BTreeSet<String>,
    /// How many `EXPLAIN`s without `ANALYZE` enclose the current node: under one, nothing
    /// runs, so classes are not raised (objects are still collected).
    not_executed: u32,
}

impl Walk {
    fn top_level(&mut self, statement: &Statement) {
        // The visitor never breaks.
        let _ = statement.visit(self);
    }

    fn raise(&mut self, class: StatementClass) {
        if self.not_executed == 0 {
            self.class = self.class.max(Some(class));
        }
    }

    fn finish(self, statements: usize) -> Classified {
        let Walk {
            class,
            objects,
            ctes,
            ..
        } = self;
        let objects = objects
            .into_iter()
            .filter(|name| !ctes.contains(name))
            .collect();
        Classified {
            class: class.unwrap_or(StatementClass::Other),
            objects,
            statements,
        }
    }

    fn name(&mut self, name: &ObjectName) {
        let mut text = String::new();
        for (i, part) in name.0.iter().enumerate() {
            if i > 0 {
                text.push('.');
            }
            match part {
                ObjectNamePart::Identifier(ident) => push_ident(&mut text, ident),
                ObjectNamePart::Function(function) => text.push_str(&function.to_string()),
            }
        }
        self.objects.insert(text);
    }

    fn ident(&mut self, ident: &Ident) {
        let mut text = String::new();
        push_ident(&mut text, ident);
        self.objects.insert(text);
    }

    fn names<'a>(&mut self, names: impl IntoIterator<Item = &'a ObjectName>) {
        for name in names {
            self.name(name);
        }
    }

    fn owner(&mut self, owner: &Owner) {
        if let Owner::Ident(ident) = owner {
            self.ident(ident);
        }
    }

    fn grantees(&mut self, grantees: &[Grantee]) {
        for grantee in grantees {
            match &grantee.name {
                Some(GranteeName::ObjectName(name)) => self.name(name),
                Some(GranteeName::UserHost { user, .. }) => self.ident(user),
                None => {}
            }
        }
    }

    fn grant_objects(&mut self, objects: Option<&GrantObjects>) {
        use GrantObjects as G;
        let Some(objects) = objects else { return };
        match objects {
            G::AllSequencesInSchema { schemas }
            | G::AllTablesInSchema { schemas }
            | G::AllViewsInSchema { schemas }
            | G::AllMaterializedViewsInSchema { schemas }
            | G::AllExternalTablesInSchema { schemas }
            | G::AllFunctionsInSchema { schemas }
            | G::AllProceduresInSchema { schemas }
            | G::AllRoutinesInSchema { schemas } => self.names(schemas),
            G::Databases(names)
            | G::Schemas(names)
            | G::Sequences(names)
            | G::Tables(names)
            | G::Views(names)
            | G::Users(names) => self.names(names),
            G::Procedures(functions) | G::Functions(functions) | G::Routines(functions) => {
                self.names(functions.iter().map(|f| &f.name));
            }
            _ => {}
        }
    }

    /// The class of `statement` itself (nested statements and queries are visited on their
    /// own), recording the names it holds outside relations.
    fn statement(&mut self, statement: &Statement) -> StatementClass {
        use StatementClass::{Ddl, Other, Privilege, Read, Unparsed, Write};
        match statement {
            // Reads. A query's own locks, `INTO` and function calls are seen by the visitor.
            Statement::Query(_)
            | Statement::Fetch { .. }
            | Statement::ShowFunctions { .. }
            | Statement::ShowVariable { .. }
            | Statement::ShowStatus { .. }
            | Statement::ShowVariables { .. }
            | Statement::ShowCreate { .. }
            | Statement::ShowColumns { .. }
            | Statement::ShowCatalogs { .. }
            | Statement::ShowDatabases { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowCharset(_)
            | Statement::ShowObjects(_)
            | Statement::ShowTables { .. }
            | Statement::ShowViews { .. }
            | Statement::ShowCollation { .. }
            | Statement::ExplainTable { .. } => Read,
            Statement::Declare { .. } => Read,
            Statement::Explain {
                analyze, options, ..
            } => {
                if !explain_analyzes(*analyze, options.as_deref()) {
                    self.not_executed += 1;
                }
                Read
            }
            Statement::Copy {
                source, to, target, ..
            } => {
                if let CopySource::Table { table_name, .. } = source {
                    self.name(table_name);
                }
                match (to, target) {
                    (true, CopyTarget::Stdout) => Read,
                    // To a server file or program, or from anywhere.
                    _ => Write,
                }
            }

            // Writes.
            Statement::Insert(_)
            | Statement::Update(_)
            | Statement::Delete(_)
            | Statement::Merge(_)
            | Statement::LoadData { .. }
            | Statement::NOTIFY { .. } => Write,
            Statement::Truncate(truncate) => {
                self.names(truncate.table_names.iter().map(|t| &t.name));
                Write
            }
            Statement::Lock(lock) => {
                self.names(lock.tables.iter().map(|t| &t.name));
                Write
            }
            Statement::LockTables { .. } | Statement::UnlockTables => Write,
            Statement::Call(function) => {
                self.name(&function.name);
                Write
            }
            Statement::Vacuum(vacuum) => {
                self.names(&vacuum.table_name);
                Write
            }
            Statement::Analyze(_) => Write,

            // Schema changes, unless they change owners or row-level security.
            Statement::CreateTable(_)
            | Statement::CreateVirtualTable { .. }
            | Statement::CreateForeignTable(_)
            | Statement::CreateForeignDataWrapper(_)
            | Statement::CreateServer(_)
            | Statement::CreateRule(_)
            | Statement::CreateOperator(_)
            | Statement::CreateOperatorFamily(_)
            | Statement::CreateOperatorClass(_)
            | Statement::CreateTextSearch(_)
            | Statement::CreateAggregate(_)
            | Statement::CreateDomain(_)
            | Statement::CreateCollation(_)
            | Statement::CreateTrigger(_)
            | Statement::DropTrigger(_)
            | Statement::DropDomain(_)
            | Statement::DropOperator(_)
            | Statement::DropOperatorFamily(_)
            | Statement::DropOperatorClass(_)
            | Statement::DropRule(_)
            | Statement::AlterIndex { .. }
            | Statement::AlterTrigger(_)
            | Statement::RenameTable(_)
            | Statement::RefreshMaterializedView(_)
            | Statement::CreateMacro { .. }
            | Statement::CreateStage { .. }
            | Statement::CreateFileFormat { .. } => Ddl,
            Statement::CreateView(_) => Ddl,
            Statement::CreateIndex(index) => {
                self.names(&index.name);
                Ddl
            }
            Statement::CreateSequence { name, .. } | Statement::CreateType { name, .. } => {
                self.name(name);
                Ddl
            }
            Statement::CreateDatabase { db_name, .. } => {
                self.name(db_name);
                Ddl
            }
            Statement::CreateSchema { schema_name, .. } => match schema_name {
                SchemaName::Simple(name) => {
                    self.name(name);
                    Ddl
                }
                SchemaName::UnnamedAuthorization(owner) => {
                    self.ident(owner);
                    Privilege
                }
                SchemaName::NamedAuthorization(name, owner) => {
                    self.name(name);
                    self.ident(owner);
                    Privilege
                }
            },
            Statement::CreateFunction(function) => {
                self.name(&function.name);
                Ddl
            }
            Statement::CreateProcedure { name, .. } => {
                self.name(name);
                Ddl
            }
            Statement::CreateExtension(extension) => {
                self.ident(&extension.name);
                Ddl
            }
            Statement::DropExtension(extension) => {
                for name in &extension.names {
                    self.ident(name);
                }
                Ddl
            }
            Statement::Comment { object_name, .. } => {
                self.name(object_name);
                Ddl
            }
            Statement::Drop {
                object_type,
                names,
                table,
                ..
            } => {
                self.names(names);
                self.names(table);
                use sqlparser::ast::ObjectType as O;
                match object_type {
                    O::Role | O::User => Privilege,
                    _ => Ddl,
                }
            }
            Statement::DropFunction(drop) => {
                self.names(drop.func_desc.iter().map(|f| &f.name));
                Ddl
            }
            Statement::DropProcedure { proc_desc, .. } => {
                self.names(proc_desc.iter().map(|f| &f.name));
                Ddl
            }
            Statement::AlterTable(alter) => {
                let mut class = Ddl;
                for operation in &alter.operations {
                    match operation {
                        AlterTableOperation::OwnerTo { new_owner } => {
                            self.owner(new_owner);
                            class = Privilege;
                        }
                        AlterTableOperation::EnableRowLevelSecurity
                        | AlterTableOperation::DisableRowLevelSecurity
                        | AlterTableOperation::ForceRowLevelSecurity
                        | AlterTableOperation::NoForceRowLevelSecurity => class = Privilege,
                        _ => {}
                    }
                }
                class
            }
            Statement::AlterSchema(alter) => {
                self.name(&alter.name);
                let mut class = Ddl;
                for operation in &alter.operations {
                    if let AlterSchemaOperation::OwnerTo { owner } = operation {
                        self.owner(owner);
                        class = Privilege;
                    }
                }
                class
            }
            Statement::AlterView(alter) => match &alter.operation {
                AlterViewOperation::OwnerTo(owner) => {
                    self.owner(owner);
                    Privilege
                }
                _ => Ddl,
            },
            Statement::AlterFunction(alter) => {
                self.name(&alter.function.name);
                match &alter.operation {
                    AlterFunctionOperation::OwnerTo(owner) => {
                        self.owner(owner);
                        Privilege
                    }
                    _ => Ddl,
                }
            }
            Statement::AlterType(alter) => {
                self.name(&alter.name);
                Ddl
            }
            Statement::AlterCollation(_)
            | Statement::AlterOperator(_)
            | Statement::AlterOperatorFamily(_)
            | Statement::AlterOperatorClass(_)
            | Statement::AlterTextSearch(_) => {
                // Their OWNER TO is as rare as it is hard to reach generically: look at the
                // text, which is cheap for statements this rare.
                if statement
                    .to_string()
                    .to_ascii_uppercase()
                    .contains(" OWNER TO ")
                {
                    Privilege
                } else {
                    Ddl
                }
            }

            // Privileges and the acting role.
            Statement::Grant(grant) => {
                self.grant_objects(grant.objects.as_ref());
                self.grantees(&grant.grantees);
                Privilege
            }
            Statement::Revoke(revoke) => {
                self.grant_objects(revoke.objects.as_ref());
                self.grantees(&revoke.grantees);
                Privilege
            }
            Statement::GrantRole(grant) => {
                for role in &grant.roles {
                    self.ident(role);
                }
                self.grantees(&grant.grantees);
                Privilege
            }
            Statement::RevokeRole(revoke) => {
                for role in &revoke.roles {
                    self.ident(role);
                }
                self.grantees(&revoke.grantees);
                Privilege
            }
            Statement::CreateRole(create) => {
                self.names(&create.names);
                Privilege
            }
            Statement::CreateUser(create) => {
                self.ident(&create.name);
                Privilege
            }
            Statement::AlterRole { name, .. } => {
                self.ident(name);
                Privilege
            }
            Statement::AlterUser(alter) => {
                self.ident(&alter.name);
                Privilege
            }
            Statement::AlterDefaultPrivileges(_)
            | Statement::CreatePolicy(_)
            | Statement::AlterPolicy(_)
            | Statement::DropPolicy(_)
            | Statement::CreateUserMapping(_)
            | Statement::Deny(_) => Privilege,
            Statement::Set(set) => self.set(set),
            Statement::Reset(reset) => match &reset.reset {
                Reset::ALL | Reset::SessionAuthorization => Privilege,
                Reset::ConfigurationParameter(name) => {
                    if GUARDED_SETTINGS.contains(&last_part(name).as_str()) {
                        Privilege
                    } else {
                        Other
                    }
                }
            },
            Statement::Discard { object_type } => match object_type {
                // DISCARD ALL runs RESET ALL and SET SESSION AUTHORIZATION DEFAULT.
                DiscardObject::ALL => Privilege,
                DiscardObject::PLANS | DiscardObject::SEQUENCES | DiscardObject::TEMP => Other,
            },
            Statement::StartTransaction { modes, .. } => transaction_modes(modes),

            // Harmless.
            Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. }
            | Statement::Close { .. }
            | Statement::Deallocate { .. }
            | Statement::LISTEN { .. }
            | Statement::UNLISTEN { .. } => Other,
            // Classed by the statement it prepares, which the visitor meets next.
            Statement::Prepare { .. } => Other,
            // What runs depends on an earlier PREPARE that this text does not show.
            Statement::Execute { .. } => Unparsed,

            // Everything else the PostgreSQL dialect accepts but PostgreSQL does not have, or
            // that is new: not read-only, and not forgotten by the audit.
            _ => Write,
        }
    }

    fn set(&mut self, set: &Set) -> StatementClass {
        use StatementClass::{Other, Privilege};
        match set {
            Set::SingleAssignment {
                variable, values, ..
            } => setting_class(variable, values),
            Set::ParenthesizedAssignments { variables, values } => variables
                .iter()
                .map(|variable| setting_class(variable, values))
                .max()
                .unwrap_or(Other),
            Set::MultipleAssignments { assignments } => assignments
                .iter()
                .map(|a| setting_class(&a.name, std::slice::from_ref(&a.value)))
                .max()
                .unwrap_or(Other),
            Set::SetRole { role_name, .. } => {
                if let Some(role) = role_name {
                    self.ident(role);
                }
                Privilege
            }
            Set::SetSessionAuthorization(_) => Privilege,
            Set::SetTransaction { modes, .. } => transaction_modes(modes),
            Set::SetSessionParam(_)
            | Set::SetTimeZone { .. }
            | Set::SetNames { .. }
            | Set::SetNamesDefault {} => Other,
        }
    }

    fn function(&mut self, function: &sqlparser::ast::Function) {
        let name = last_part(&function.name);
        if name == "set_config" {
            let setting = first_string_arg(&function.args).map(|s| s.to_ascii_lowercase());
            match setting {
                Some(setting) if !GUARDED_SETTINGS.contains(&setting.trim()) => {}
                _ => {
                    self.name(&function.name);
                    self.raise(StatementClass::Privilege);
                }
            }
        } else if WRITE_FUNCTIONS.contains(&name.as_str()) {
            self.name(&function.name);
            if matches!(name.as_str(), "nextval" | "setval")
                && let Some(sequence) = first_string_arg(&function.args)
            {
                self.objects.insert(regclass_text(sequence));
            }
            self.raise(StatementClass::Write);
        }
    }
}

impl Visitor for Walk {
    type Break = ();

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        let class = self.statement(statement);
        // An EXPLAIN without ANALYZE has just entered `not_executed`, but is itself a read.
        if matches!(statement, Statement::Explain { .. }) {
            self.class = self.class.max(Some(class));
        } else {
            self.raise(class);
        }
        ControlFlow::Continue(())
    }

    fn post_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        if let Statement::Explain {
            analyze, options, ..
        } = statement
            && !explain_analyzes(*analyze, options.as_deref())
        {
            self.not_executed = self.not_executed.saturating_sub(1);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                let mut name = String::new();
                push_ident(&mut name, &cte.alias.name);
                self.ctes.insert(name);
            }
        }
        if !query.locks.is_empty() {
            // SELECT … FOR UPDATE / SHARE takes row locks.
            self.raise(StatementClass::Write);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        if let Some(into) = &select.into {
            // SELECT … INTO creates a table.
            for target in &into.targets {
                match target {
                    Expr::Identifier(ident) => self.ident(ident),
                    Expr::CompoundIdentifier(idents) => {
                        self.name(&ObjectName::from(idents.clone()));
                    }
                    _ => {}
                }
            }
            self.raise(StatementClass::Ddl);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        self.name(relation);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(function) = expr {
            self.function(function);
        }
        ControlFlow::Continue(())
    }
}

/// Whether an `EXPLAIN` runs its statement: `EXPLAIN ANALYZE …` or `EXPLAIN (ANALYZE[ on]) …`.
fn explain_analyzes(analyze: bool, options: Option<&[sqlparser::ast::UtilityOption]>) -> bool {
    analyze
        || options.unwrap_or_default().iter().any(|option| {
            option.name.value.eq_ignore_ascii_case("analyze")
                && option.arg.as_ref().is_none_or(|arg| !is_false(arg))
        })
}

/// `SET name = values`: `Privilege` for a role change or for lifting read-only, else `Other`.
fn setting_class(variable: &ObjectName, values: &[Expr]) -> StatementClass {
    let name = last_part(variable);
    let guarded = GUARDED_SETTINGS.contains(&name.as_str());
    let harmless_true =
        READ_ONLY_SETTINGS.contains(&name.as_str()) && matches!(values, [value] if is_true(value));
    if guarded && !harmless_true {
        StatementClass::Privilege
    } else {
        StatementClass::Other
    }
}

/// `BEGIN`/`SET TRANSACTION`: `READ WRITE` lifts a read-only default, so it is `Privilege`.
fn transaction_modes(modes: &[TransactionMode]) -> StatementClass {
    let read_write = modes.iter().any(|mode| {
        matches!(
            mode,
            TransactionMode::AccessMode(TransactionAccessMode::ReadWrite)
        )
    });
    if read_write {
        StatementClass::Privilege
    } else {
        StatementClass::Other
    }
}

/// A setting value PostgreSQL reads as true: `on`, `true`, `yes`, `1` (and their prefixes,
/// which PostgreSQL accepts too, are not: an unusual spelling is treated as false, the strict
/// side).
fn is_true(expr: &Expr) -> bool {
    bool_value(expr) == Some(true)
}

fn is_false(expr: &Expr) -> bool {
    bool_value(expr) == Some(false)
}

fn bool_value(expr: &Expr) -> Option<bool> {
    let word = match expr {
        Expr::Identifier(ident) => ident.value.to_ascii_lowercase(),
        Expr::Value(value) => match &value.value {
            Value::Boolean(b) => return Some(*b),
            Value::SingleQuotedString(s) => s.to_ascii_lowercase(),
            Value::Number(n, _) => n.to_string(),
            _ => return None,
        },
        _ => return None,
    };
    match word.as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// The first argument of a call when it is a string constant (`nextval('seq')`).
fn first_string_arg(args: &FunctionArguments) -> Option<&str> {
    let FunctionArguments::List(list) = args else {
        return None;
    };
    let expr = match list.args.first()? {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(expr))
        | FunctionArg::Named {
            arg: FunctionArgExpr::Expr(expr),
            ..
        }
        | FunctionArg::ExprNamed {
            arg: FunctionArgExpr::Expr(expr),
            ..
        } => expr,
        _ => return None,
    };
    // `'seq'::regclass` is a cast around the string.
    let expr = match expr {
        Expr::Cast { expr, .. } => expr.as_ref(),
        other => other,
    };
    match expr {
        Expr::Value(value) => match &value.value {
            Value::SingleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::DollarQuotedString(sqlparser::ast::DollarQuotedString { value: s, .. }) => {
                Some(s.as_str())
            }
            _ => None,
        },
        _ => None,
    }
}

/// The last part of a name, lowercased unless quoted (`pg_catalog.NextVal` → `nextval`).
fn last_part(name: &ObjectName) -> String {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(ident)) => {
            if ident.quote_style.is_some() {
                ident.value.clone()
            } else {
                ident.value.to_ascii_lowercase()
            }
        }
        _ => String::new(),
    }
}

/// A name given as text to a `regclass` (`'Public.Seq'`, `'"MySeq"'`), in the form of
/// [`Walk::name`].
fn regclass_text(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text.trim();
    loop {
        let (ident, after) = if let Some(body) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut end = body.len();
            let mut chars = body.char_indices().peekable();
            while let Some((i, c)) = chars.next() {
                if c != '"' {
                    value.push(c);
                } else if chars.next_if(|&(_, n)| n == '"').is_some() {
                    value.push('"');
                } else {
                    end = i + 1;
                    break;
                }
            }
            (
                Ident::with_quote('"', value),
                body.get(end..).unwrap_or_default(),
            )
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            (
                Ident::new(rest.get(..end).unwrap_or_default().trim()),
                rest.get(end..).unwrap_or_default(),
            )
        };
        push_ident(&mut out, &ident);
        match after.trim_start().strip_prefix('.') {
            Some(next) => {
                out.push('.');
                rest = next.trim_start();
            }
            None => break,
        }
    }
    out
}

/// Appends an identifier as PostgreSQL resolves it: unquoted ones lowercased (ASCII only, as
/// PostgreSQL does under UTF-8), then quoted again when the result would not read back as the
/// same unquoted identifier.
fn push_ident(out: &mut String, ident: &Ident) {
    let value = if ident.quote_style.is_some() {
        std::borrow::Cow::Borrowed(ident.value.as_str())
    } else {
        std::borrow::Cow::Owned(ident.value.to_ascii_lowercase())
    };
    let plain = value.chars().enumerate().all(|(i, c)| {
        c.is_ascii_lowercase()
            || c == '_'
            || !c.is_ascii()
            || (i > 0 && (c.is_ascii_digit() || c == '$'))
    }) && !value.is_empty();
    if plain {
        out.push_str(&value);
    } else {
        out.push('"');
        for c in value.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    }
}
