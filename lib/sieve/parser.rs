//! Sieve's grammar (RFC 5228 8.2) into a syntax tree: commands with their
//! arguments, tests and blocks. Meaning is checked later, in `compile`.

use super::lexer::{Lexer, Pos, Tok};
use super::CompileError;

/// Deepest nesting of blocks and tests.
pub const MAX_NESTING: usize = 32;

#[derive(Debug, Clone)]
pub struct Command {
    pub name: String,
    pub pos: Pos,
    pub args: Vec<Arg>,
    pub tests: Vec<Test>,
    /// Whether the tests were a parenthesised list.
    pub test_list: bool,
    /// Where the arguments before the tests end.
    pub args_end: Pos,
    pub block: Option<Vec<Command>>,
}

#[derive(Debug, Clone)]
pub struct Test {
    pub name: String,
    pub pos: Pos,
    pub args: Vec<Arg>,
    pub tests: Vec<Test>,
    pub test_list: bool,
}

#[derive(Debug, Clone)]
pub enum Arg {
    Str(String, Pos),
    List(Vec<(String, Pos)>, Pos),
    Num(u64, Pos),
    Tag(String, Pos),
}

impl Arg {
    pub fn pos(&self) -> Pos {
        match self {
            Arg::Str(_, p) | Arg::List(_, p) | Arg::Num(_, p) | Arg::Tag(_, p) => *p,
        }
    }
}

struct Parser<'a> {
    lex: Lexer<'a>,
    tok: Tok,
    pos: Pos,
    /// Where the token before the current one ends.
    prev_end: Pos,
    depth: usize,
}

/// The commands of a whole script.
pub fn parse(src: &str) -> Result<Vec<Command>, CompileError> {
    let mut lex = Lexer::new(src);
    let (tok, pos) = lex.next()?;
    let mut p = Parser {
        lex,
        tok,
        pos,
        prev_end: pos,
        depth: 0,
    };
    let cmds = p.commands()?;
    if p.tok != Tok::Eof {
        return Err(p.pos.error(format!("unexpected {}", p.tok.describe())));
    }
    Ok(cmds)
}

impl Parser<'_> {
    fn advance(&mut self) -> Result<(), CompileError> {
        self.prev_end = self.lex.end();
        let (t, p) = self.lex.next()?;
        self.tok = t;
        self.pos = p;
        Ok(())
    }

    fn commands(&mut self) -> Result<Vec<Command>, CompileError> {
        let mut out = Vec::new();
        while let Tok::Ident(_) = self.tok {
            out.push(self.command()?);
        }
        Ok(out)
    }

    fn command(&mut self) -> Result<Command, CompileError> {
        let Tok::Ident(name) = std::mem::replace(&mut self.tok, Tok::Eof) else {
            return Err(self.pos.error("expected a command"));
        };
        let pos = self.pos;
        self.advance()?;
        let (args, tests, test_list, args_end) = self.arguments()?;
        let block = match self.tok {
            Tok::Semicolon => {
                self.advance()?;
                None
            }
            Tok::LBrace => {
                self.enter()?;
                self.advance()?;
                let cmds = self.commands()?;
                if self.tok != Tok::RBrace {
                    return Err(self.pos.error(format!(
                        "expected \"}}\" or a command, found {}",
                        self.tok.describe()
                    )));
                }
                self.advance()?;
                self.depth -= 1;
                Some(cmds)
            }
            // Reported where the ";" is missing, at the end of the
            // command (Pigeonhole names the command's line too).
            _ => {
                return Err(self.prev_end.error(format!(
                    "missing \";\" after the {name} command (found {})",
                    self.tok.describe()
                )))
            }
        };
        Ok(Command {
            name,
            pos,
            args,
            tests,
            test_list,
            args_end,
            block,
        })
    }

    fn enter(&mut self) -> Result<(), CompileError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.pos.error("nesting too deep"));
        }
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn arguments(&mut self) -> Result<(Vec<Arg>, Vec<Test>, bool, Pos), CompileError> {
        let mut args = Vec::new();
        loop {
            let pos = self.pos;
            match &self.tok {
                Tok::Str(s, _) => {
                    args.push(Arg::Str(s.clone(), pos));
                    self.advance()?;
                }
                Tok::Number(n) => {
                    args.push(Arg::Num(*n, pos));
                    self.advance()?;
                }
                Tok::Tag(t) => {
                    args.push(Arg::Tag(t.clone(), pos));
                    self.advance()?;
                }
                Tok::LBracket => {
                    self.advance()?;
                    let mut list = Vec::new();
                    loop {
                        match &self.tok {
                            Tok::Str(s, _) => list.push((s.clone(), self.pos)),
                            t => {
                                return Err(self.pos.error(format!(
                                    "expected a string in the list, found {}",
                                    t.describe()
                                )))
                            }
                        }
                        self.advance()?;
                        match self.tok {
                            Tok::Comma => self.advance()?,
                            Tok::RBracket => break,
                            ref t => {
                                return Err(self.pos.error(format!(
                                    "expected \",\" or \"]\", found {}",
                                    t.describe()
                                )))
                            }
                        }
                    }
                    self.advance()?;
                    args.push(Arg::List(list, pos));
                }
                _ => break,
            }
        }
        let args_end = self.prev_end;
        match self.tok {
            Tok::Ident(_) => {
                let t = self.test()?;
                Ok((args, vec![t], false, args_end))
            }
            Tok::LParen => {
                self.enter()?;
                self.advance()?;
                let mut tests = vec![self.test()?];
                while self.tok == Tok::Comma {
                    self.advance()?;
                    tests.push(self.test()?);
                }
                if self.tok != Tok::RParen {
                    return Err(self.pos.error(format!(
                        "expected \",\" or \")\", found {}",
                        self.tok.describe()
                    )));
                }
                self.advance()?;
                self.depth -= 1;
                Ok((args, tests, true, args_end))
            }
            _ => Ok((args, Vec::new(), false, args_end)),
        }
    }

    fn test(&mut self) -> Result<Test, CompileError> {
        let name = match &self.tok {
            Tok::Ident(n) => n.clone(),
            t => {
                return Err(self
                    .pos
                    .error(format!("expected a test, found {}", t.describe())))
            }
        };
        let pos = self.pos;
        self.enter()?;
        self.advance()?;
        let (args, tests, test_list, _) = self.arguments()?;
        self.depth -= 1;
        Ok(Test {
            name,
            pos,
            args,
            tests,
            test_list,
        })
    }
}
