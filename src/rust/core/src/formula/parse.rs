//! Recursive-descent parser for the KeOps formula syntax. It only builds a
//! syntax tree; names, arities and dimensions are checked when the tree is
//! lowered into a [`Graph`](super::Graph).
//!
//! Grammar (precedence from loose to tight, as in Python, whose expressions
//! KeOps formula strings are):
//! ```text
//! expr    := bor [cmp bor]          (one comparison: Python's chains a < b < c are refused)
//! cmp     := '<' | '>' | '<=' | '>=' | '==' | '!='
//! bor     := sum ('|' sum)*
//! sum     := product (('+' | '-') product)*
//! product := unary (('*' | '/') unary)*
//! unary   := ('-' | '+') unary | power
//! power   := primary ['**' unary]   (right-associative; -x**2 is -(x**2), x**-1 is x**(-1))
//! primary := number | name | name '(' [expr (',' expr)*] ')' | '(' expr ')'
//!          | list
//! list    := '[' [expr (',' expr)* [',']] ']' | '(' ')' | '(' expr ',' [expr (',' expr)* [',']] ')'
//! alias   := name '=' expr          (argument declarations such as "x = Vi(3)")
//! ```
//!
//! Lists (pykeops' `[2, 3]`, `(2, 3)`, `(3,)`) are only meaningful as the
//! integer-list arguments of operations such as `TensorDot`, where they are
//! read like `Ind(2, 3)`; the lowering rejects them elsewhere.
//!
//! Bounded recursion: the parser recurses once per level of nesting
//! (parentheses, calls, unary minus), at most [`MAX_DEPTH`] levels, but
//! chains of binary operators (`a + b + c + ...`, what R builds when it sums
//! many LazyTensors) are loops whatever their length. They become left-deep
//! trees, which the lowering walks and `Drop` frees without recursion.

use crate::error::{Error, Result};

/// Syntax tree with the 1-based column of each node, for error messages.
#[derive(Debug, Clone, PartialEq)]
pub enum Ast {
    Number {
        value: f64,
        column: usize,
    },
    Name {
        name: String,
        column: usize,
    },
    Call {
        name: String,
        args: Vec<Ast>,
        column: usize,
    },
    Neg {
        arg: Box<Ast>,
        column: usize,
    },
    /// `op` is the infix operator as written: `+ - * / | ** < > <= >= == !=`.
    Binary {
        op: &'static str,
        lhs: Box<Ast>,
        rhs: Box<Ast>,
        column: usize,
    },
    /// A bracketed or parenthesized list (`[2, 3]`, `(2, 3)`, `(3,)`).
    List {
        items: Vec<Ast>,
        column: usize,
    },
}

impl Drop for Ast {
    /// Frees the tree with an explicit stack: a left-deep chain of a million
    /// terms would overflow the call stack of the derived, recursive drop.
    fn drop(&mut self) {
        let mut stack = Vec::new();
        self.detach_children(&mut stack);
        while let Some(mut node) = stack.pop() {
            node.detach_children(&mut stack);
        }
    }
}

impl Ast {
    /// Moves the children onto `stack`, leaving leaves in their place.
    fn detach_children(&mut self, stack: &mut Vec<Ast>) {
        let leaf = || Ast::Number { value: 0.0, column: 0 };
        match self {
            Ast::Call { args, .. } | Ast::List { items: args, .. } => stack.append(args),
            Ast::Neg { arg, .. } => stack.push(std::mem::replace(&mut **arg, leaf())),
            Ast::Binary { lhs, rhs, .. } => {
                stack.push(std::mem::replace(&mut **lhs, leaf()));
                stack.push(std::mem::replace(&mut **rhs, leaf()));
            }
            Ast::Number { .. } | Ast::Name { .. } => {}
        }
    }

    pub fn column(&self) -> usize {
        match self {
            Ast::Number { column, .. }
            | Ast::Name { column, .. }
            | Ast::Call { column, .. }
            | Ast::Neg { column, .. }
            | Ast::Binary { column, .. }
            | Ast::List { column, .. } => *column,
        }
    }

    /// The value of an integer literal (possibly negated), if this is one.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Ast::Number { value, .. } if value.fract() == 0.0 && value.abs() < 9.0e15 => Some(*value as i64),
            Ast::Neg { arg, .. } => arg.as_integer().map(|v| -v),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Name(String),
    Punct(char),
    /// A two-character operator: `**`, `<=`, `>=`, `==`, `!=`.
    Op2(&'static str),
    End,
}

/// The comparison operators, loosest of the infix operators.
const COMPARISONS: [&str; 6] = ["<", ">", "<=", ">=", "==", "!="];

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(Token, usize)>,
    pos: usize,
    depth: usize,
}

/// Deepest nesting of parentheses, calls and unary minus accepted: the
/// parser recurses, and a stack overflow would abort the R session.
pub const MAX_DEPTH: usize = 1000;

/// Parses a formula expression (the whole string must be consumed).
pub fn parse_expression(text: &str) -> Result<Ast> {
    let mut p = Parser::new(text)?;
    let ast = p.expr()?;
    p.expect_end()?;
    Ok(ast)
}

/// Parses an argument declaration `name = expr`.
pub fn parse_alias(text: &str) -> Result<(String, Ast)> {
    let mut p = Parser::new(text)?;
    let name = match p.next() {
        (Token::Name(n), _) => n,
        (_, col) => return Err(p.error(col, "expected a variable name, as in \"x = Vi(3)\"")),
    };
    match p.next() {
        (Token::Punct('='), _) => {}
        (_, col) => return Err(p.error(col, "expected '=' after the variable name")),
    }
    let ast = p.expr()?;
    p.expect_end()?;
    Ok((name, ast))
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Result<Self> {
        let tokens = tokenize(text)?;
        Ok(Parser { text, tokens, pos: 0, depth: 0 })
    }

    #[cold]
    #[inline(never)]
    fn error(&self, column: usize, message: &str) -> Error {
        syntax_error(self.text, column, message)
    }

    fn peek(&self) -> &Token {
        &self.tokens[self.pos].0
    }

    fn next(&mut self) -> (Token, usize) {
        let t = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn expect_end(&mut self) -> Result<()> {
        match self.next() {
            (Token::End, _) => Ok(()),
            (t, col) => Err(self.error(col, &format!("unexpected {} after the end of the expression", describe(&t)))),
        }
    }

    fn expr(&mut self) -> Result<Ast> {
        let lhs = self.binary_level(0)?;
        if self.comparison().is_none() {
            return Ok(lhs);
        }
        self.comparison_rest(lhs)
    }

    /// `lhs cmp rhs` from the comparison operator on. Out of line, as
    /// the other rare branches, so that each level of nesting costs little stack.
    #[inline(never)]
    fn comparison_rest(&mut self, lhs: Ast) -> Result<Ast> {
        let op = self.comparison().unwrap_or("<");
        let (_, column) = self.next();
        let rhs = self.binary_level(0)?;
        if let Some(again) = self.comparison() {
            return Err(self.chained(op, again));
        }
        Ok(Ast::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs), column })
    }

    #[cold]
    #[inline(never)]
    fn chained(&self, op: &str, again: &str) -> Error {
        let col = self.tokens[self.pos].1;
        self.error(
            col,
            &format!("chained comparisons (a {op} b {again} c) are not supported: compare two expressions at a time"),
        )
    }

    /// The comparison operator at the current token, if it is one.
    fn comparison(&self) -> Option<&'static str> {
        let op = match *self.peek() {
            Token::Punct(c) => COMPARISONS.iter().find(|s| s.len() == 1 && s.starts_with(c)),
            Token::Op2(s) => COMPARISONS.iter().find(|c| **c == s),
            _ => None,
        };
        op.copied()
    }

    /// Left-associative binary operators, one precedence level at a time.
    fn binary_level(&mut self, level: usize) -> Result<Ast> {
        const LEVELS: [&[&str]; 3] = [&["|"], &["+", "-"], &["*", "/"]];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut lhs = self.binary_level(level + 1)?;
        while let Token::Punct(c) = *self.peek() {
            let Some(&op) = LEVELS[level].iter().find(|s| s.starts_with(c)) else { break };
            let (_, column) = self.next();
            let rhs = self.binary_level(level + 1)?;
            lhs = Ast::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs), column };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Ast> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let column = self.tokens[self.pos].1;
            return Err(self.error(column, &format!("the formula is nested more than {MAX_DEPTH} levels deep")));
        }
        let result = self.unary_inner();
        self.depth -= 1;
        result
    }

    fn unary_inner(&mut self) -> Result<Ast> {
        if *self.peek() == Token::Punct('-') {
            let (_, column) = self.next();
            let arg = self.unary()?;
            return Ok(Ast::Neg { arg: Box::new(arg), column });
        }
        if *self.peek() == Token::Punct('+') {
            self.next();
            return self.unary();
        }
        let base = self.primary()?;
        if *self.peek() != Token::Op2("**") {
            return Ok(base);
        }
        self.power_rest(base)
    }

    /// `base ** exponent` from the `**` on. The exponent is a unary
    /// expression: right-associative, and `x ** -1` is allowed, as in Python.
    #[inline(never)]
    fn power_rest(&mut self, base: Ast) -> Result<Ast> {
        let (_, column) = self.next();
        let exponent = self.unary()?;
        Ok(Ast::Binary { op: "**", lhs: Box::new(base), rhs: Box::new(exponent), column })
    }

    /// The rest of a tuple `(a, b)` or `(a,)` after its first item and comma.
    /// Out of line, as the other rare branches, so that each level of
    /// nesting costs little stack.
    #[inline(never)]
    fn tuple_rest(&mut self, first: Ast, column: usize) -> Result<Ast> {
        let mut items = vec![first];
        if *self.peek() != Token::Punct(')') {
            items.push(self.expr()?);
        }
        self.list_rest(')', items, column)
    }

    /// `[ ... ]` after its '['.
    #[inline(never)]
    fn bracketed(&mut self, column: usize) -> Result<Ast> {
        if *self.peek() == Token::Punct(']') {
            self.next();
            return Ok(Ast::List { items: Vec::new(), column });
        }
        let first = self.expr()?;
        self.list_rest(']', vec![first], column)
    }

    /// The items of a list up to `close`, after its first item (the opening
    /// bracket and that item are consumed); a trailing comma is allowed.
    #[inline(never)]
    fn list_rest(&mut self, close: char, mut items: Vec<Ast>, column: usize) -> Result<Ast> {
        loop {
            match self.next() {
                (Token::Punct(c), _) if c == close => return Ok(Ast::List { items, column }),
                (Token::Punct(','), _) => {
                    if *self.peek() == Token::Punct(close) {
                        continue;
                    }
                    items.push(self.expr()?);
                }
                (t, col) => {
                    return Err(
                        self.error(col, &format!("expected ',' or '{close}' in a list but found {}", describe(&t)))
                    )
                }
            }
        }
    }

    fn primary(&mut self) -> Result<Ast> {
        match self.next() {
            (Token::Number(value), column) => Ok(Ast::Number { value, column }),
            (Token::Punct('('), column) => {
                if *self.peek() == Token::Punct(')') {
                    self.next();
                    return Ok(Ast::List { items: Vec::new(), column });
                }
                let inner = self.expr()?;
                match self.next() {
                    (Token::Punct(')'), _) => Ok(inner),
                    // `(a, b)` and `(a,)`: a tuple, as in Python.
                    (Token::Punct(','), _) => self.tuple_rest(inner, column),
                    (t, col) => Err(self.error(col, &format!("expected ')' but found {}", describe(&t)))),
                }
            }
            (Token::Punct('['), column) => self.bracketed(column),
            (Token::Name(name), column) => {
                if *self.peek() != Token::Punct('(') {
                    return Ok(Ast::Name { name, column });
                }
                self.next();
                let mut args = Vec::new();
                if *self.peek() == Token::Punct(')') {
                    self.next();
                    return Ok(Ast::Call { name, args, column });
                }
                loop {
                    args.push(self.expr()?);
                    match self.next() {
                        (Token::Punct(','), _) => continue,
                        (Token::Punct(')'), _) => break,
                        (t, col) => {
                            return Err(self.error(
                                col,
                                &format!("expected ',' or ')' in the arguments of {name} but found {}", describe(&t)),
                            ))
                        }
                    }
                }
                Ok(Ast::Call { name, args, column })
            }
            (t, col) => Err(self.error(col, &format!("expected a number, a name or '(' but found {}", describe(&t)))),
        }
    }
}

fn describe(t: &Token) -> String {
    match t {
        Token::Number(v) => format!("the number {v}"),
        Token::Name(n) => format!("the name '{n}'"),
        Token::Punct(c) => format!("'{c}'"),
        Token::Op2(s) => format!("'{s}'"),
        Token::End => "the end of the formula".to_string(),
    }
}

#[cold]
#[inline(never)]
pub(crate) fn syntax_error(text: &str, column: usize, message: &str) -> Error {
    let (excerpt, caret_at) = excerpt(text, column);
    Error::Syntax {
        formula: excerpt,
        column,
        caret: format!("{}^", " ".repeat(caret_at)),
        message: message.to_string(),
    }
}

/// Characters of the formula shown before and after the error's column.
const EXCERPT_BEFORE: usize = 60;
const EXCERPT_AFTER: usize = 20;

/// The part of `text` around the 1-based `column` shown in a syntax error
/// (a formula can be megabytes long), with "..." where it is cut, and the
/// caret's offset in it.
fn excerpt(text: &str, column: usize) -> (String, usize) {
    let at = column.saturating_sub(1);
    let first = at.saturating_sub(EXCERPT_BEFORE);
    let mut shown: String = text.chars().skip(first).take(at - first + EXCERPT_AFTER + 1).collect();
    let mut caret = at - first;
    if text.chars().nth(at + EXCERPT_AFTER + 1).is_some() {
        shown.push_str("...");
    }
    if first > 0 {
        shown.insert_str(0, "...");
        caret += 3;
    }
    (shown, caret)
}

fn tokenize(text: &str) -> Result<Vec<(Token, usize)>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            // Exponent: e, E, optionally signed, followed by digits.
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut k = i + 1;
                if k < chars.len() && (chars[k] == '+' || chars[k] == '-') {
                    k += 1;
                }
                if k < chars.len() && chars[k].is_ascii_digit() {
                    i = k;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let literal: String = chars[start..i].iter().collect();
            let value: f64 = literal
                .parse()
                .map_err(|_| syntax_error(text, column, &format!("invalid number '{literal}'")))?;
            tokens.push((Token::Number(value), column));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                i += 1;
            }
            tokens.push((Token::Name(chars[start..i].iter().collect()), column));
        } else if let Some(op) = ["**", "<=", ">=", "==", "!="]
            .into_iter()
            .find(|op| op.starts_with(c) && chars.get(i + 1).is_some_and(|&d| op.ends_with(d)))
        {
            tokens.push((Token::Op2(op), column));
            i += 2;
        } else if "()[]+-*/|,=<>".contains(c) {
            tokens.push((Token::Punct(c), column));
            i += 1;
        } else {
            return Err(syntax_error(text, column, &format!("unexpected character '{c}'")));
        }
    }
    tokens.push((Token::End, chars.len() + 1));
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(a: &Ast) -> String {
        match a {
            Ast::Number { value, .. } => format!("{value}"),
            Ast::Name { name, .. } => name.clone(),
            Ast::Call { name, args, .. } => {
                format!("{name}({})", args.iter().map(show).collect::<Vec<_>>().join(","))
            }
            Ast::Neg { arg, .. } => format!("(-{})", show(arg)),
            Ast::Binary { op, lhs, rhs, .. } => format!("({}{op}{})", show(lhs), show(rhs)),
            Ast::List { items, .. } => format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(",")),
        }
    }

    #[test]
    fn precedence_and_associativity() {
        let cases = [
            ("a+b*c", "(a+(b*c))"),
            ("a-b-c", "((a-b)-c)"),
            ("a/b/c", "((a/b)/c)"),
            ("-a*b", "((-a)*b)"),
            ("-SqDist(x,y)/2", "((-SqDist(x,y))/2)"),
            ("x|y+z", "(x|(y+z))"),
            ("(a+b)*c", "((a+b)*c)"),
            ("Exp(-x)", "Exp((-x))"),
            ("f()", "f()"),
            ("1.5e-3*x", "(0.0015*x)"),
            (".5+2E2", "(0.5+200)"),
            // Python's precedence: comparisons loosest (looser than |),
            // ** tightest, right-associative, above unary minus on its left.
            ("a+b<c*d", "((a+b)<(c*d))"),
            ("x|y>=z", "((x|y)>=z)"),
            ("a==b-1", "(a==(b-1))"),
            ("a!=b", "(a!=b)"),
            ("a<=b", "(a<=b)"),
            ("a>b", "(a>b)"),
            ("-x**2", "(-(x**2))"),
            ("a**b**c", "(a**(b**c))"),
            ("x**-1", "(x**(-1))"),
            ("2*x**3/y", "((2*(x**3))/y)"),
            ("(a+b)**2", "((a+b)**2)"),
            ("f(x)**0.5", "(f(x)**0.5)"),
            // Lists.
            ("[2,3]", "[2,3]"),
            ("(2,3)", "[2,3]"),
            ("(3,)", "[3]"),
            ("[3]", "[3]"),
            ("[3,]", "[3]"),
            ("()", "[]"),
            ("[]", "[]"),
            ("(3)", "3"),
            ("T(x,(2,3),[0])", "T(x,[2,3],[0])"),
        ];
        for (src, want) in cases {
            assert_eq!(show(&parse_expression(src).unwrap()), want, "{src}");
        }
    }

    #[test]
    fn errors_name_the_column() {
        let cases = [
            ("Exp(x", 6),
            ("a + * b", 5),
            ("x $ y", 3),
            ("a b", 3),
            ("Sum(x,)", 7),
            ("", 1),
            ("a < b < c", 7),
            ("a ! b", 3),
            ("[2, 3", 6),
            ("(2,,3)", 4),
            ("x ** * y", 6),
        ];
        for (src, col) in cases {
            match parse_expression(src) {
                Err(Error::Syntax { column, .. }) => assert_eq!(column, col, "{src}"),
                other => panic!("{src}: expected a syntax error, got {other:?}"),
            }
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}x{}", "(".repeat(5000), ")".repeat(5000));
        assert!(matches!(parse_expression(&deep), Err(Error::Syntax { .. })));
        let minus = format!("{}x", "-".repeat(5000));
        assert!(matches!(parse_expression(&minus), Err(Error::Syntax { .. })));
        let ok = format!("{}x{}", "(".repeat(500), ")".repeat(500));
        assert!(parse_expression(&ok).is_ok());
    }

    /// Chains of binary operators are loops: 800 000 terms parse and drop
    /// on a 1 MB stack, and nesting stays bounded by MAX_DEPTH.
    #[test]
    fn long_chains_parse_on_a_small_stack() {
        let run = || {
            let long = format!("x{}", " + x * y - z".repeat(200_000));
            let ast = parse_expression(&long).unwrap();
            assert!(matches!(ast, Ast::Binary { op: "-", .. }));
            drop(ast);
        };
        std::thread::Builder::new().stack_size(1 << 20).spawn(run).unwrap().join().unwrap();
        // Nesting recurses: MAX_DEPTH levels fit in half of the 8 MB that
        // R's main thread usually has.
        let nested = || {
            for open in ["Exp(", "(", "-(", "Sum(x, "] {
                let levels = if open == "-(" { MAX_DEPTH / 2 } else { MAX_DEPTH } - 1;
                let f = format!("{}x{}", open.repeat(levels), ")".repeat(levels));
                assert!(parse_expression(&f).is_ok(), "{open}");
            }
        };
        std::thread::Builder::new().stack_size(4 << 20).spawn(nested).unwrap().join().unwrap();
    }

    /// Errors in huge formulas come back at once, with an excerpt around
    /// the column instead of the whole formula.
    #[test]
    fn errors_in_huge_formulas_are_prompt_and_short() {
        let spaces = " ".repeat(10_000_000);
        let start = std::time::Instant::now();
        let err = parse_expression(&spaces).unwrap_err();
        let junk = format!("x + {}$", "y".repeat(10_000_000));
        let err2 = parse_expression(&junk).unwrap_err();
        let many = "1 ".repeat(5_000_000);
        let err3 = parse_expression(&many).unwrap_err();
        assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
        for (e, col) in [(&err, 10_000_001), (&err3, 3)] {
            match e {
                Error::Syntax { column, .. } => assert_eq!(*column, col),
                other => panic!("{other:?}"),
            }
        }
        assert!(err.to_string().len() < 300 && err2.to_string().len() < 300, "{err}");
        match parse_expression("Exp(x + $)").unwrap_err() {
            Error::Syntax { formula, caret, column, .. } => {
                assert_eq!((formula.as_str(), caret.as_str(), column), ("Exp(x + $)", "        ^", 9));
            }
            other => panic!("{other:?}"),
        }
        let long = format!("{}$", "x+".repeat(100));
        let msg = parse_expression(&long).unwrap_err().to_string();
        let lines: Vec<&str> = msg.lines().collect();
        assert!(lines[1].trim_start().starts_with("...") && lines[2].trim_end().ends_with('^'), "{msg}");
        assert_eq!(lines[1].find('$'), Some(lines[2].len() - 1), "{msg}");
    }

    #[test]
    fn aliases() {
        let (name, ast) = parse_alias("x = Vi(3)").unwrap();
        assert_eq!(name, "x");
        assert_eq!(show(&ast), "Vi(3)");
        assert!(parse_alias("Vi(3)").is_err());
        assert!(parse_alias("x Vi(3)").is_err());
    }

    #[test]
    fn integers() {
        assert_eq!(parse_expression("-3").unwrap().as_integer(), Some(-3));
        assert_eq!(parse_expression("2.5").unwrap().as_integer(), None);
    }
}
